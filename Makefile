# The two commands a new user needs (as root on Debian): `make demo` and `make test`.
# Each installs what it needs first: Debian packages, a virtualenv and the Python dependencies.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEBIAN_PACKAGES := iproute2 keepalived tcpdump procps frr systemd prometheus openssl nftables
POLICY_RC_D := /usr/sbin/policy-rc.d
RUNTIME_DIR ?= /run/pykeepalived

.PHONY: deps venv demo run test test-fast lint typecheck bench bench-quick clean

# Debian packages the tests and the demo use (keepalived and FRR are the interop reference
# peers; prometheus brings promtool, which lints the metrics; systemd, systemd-analyze; nftables brings nft, which the LVS tests use to read the table back). The interop tests run their own keepalived, zebra and vrrpd inside lab namespaces,
# so package scripts must not start the services on the host: a policy-rc.d that says 101
# ("action forbidden") stops them, and is removed again only if this target created it.
deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if ! $(PYTHON) -m venv --help >/dev/null 2>&1; then missing="$$missing python3-venv"; fi; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  created=""; \
	  if [ ! -e $(POLICY_RC_D) ]; then \
	    printf '#!/bin/sh\nexit 101\n' > $(POLICY_RC_D) && chmod +x $(POLICY_RC_D) && created=1; \
	  fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  rc=$$?; \
	  if [ -n "$$created" ]; then rm -f $(POLICY_RC_D); fi; \
	  exit $$rc; \
	fi

$(BIN)/activate: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(BIN)/activate

venv: $(BIN)/activate

# A three-node lab in network namespaces: elections, a killed master, the takeover time.
demo: deps venv
	$(BIN)/pykeepalivedctl demo

# The daemon in the foreground on a config of your own: make run CONFIG=/etc/keepalived/keepalived.conf
CONFIG ?= examples/keepalived.conf
run: deps venv
	$(BIN)/pykeepalived -f $(CONFIG) -l --runtime-dir $(RUNTIME_DIR)

test: deps venv
	$(BIN)/pytest -q

test-fast: venv
	$(BIN)/pytest -q -m "not netns and not interop and not slow"

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

# Every benchmark in turn, then one result file (bench/results/latest.json), the plots and the
# figures in docs/benchmarks.md; under 30 minutes on 2 cores (bench/run_all.py). A failing bench
# is recorded as failed and the others still run. bench-quick runs each for a few seconds.
bench: deps venv
	$(BIN)/python bench/run_all.py

bench-quick: deps venv
	$(BIN)/python bench/run_all.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info

from collections.abc import Callable

import core
from tests.core.conftest import MINIMAL

Parse = Callable[..., core.LoadResult]


def test_vrrp_defaults_and_inheritance(parse: Parse) -> None:
    c = parse(MINIMAL).config
    s = core.vrrp_settings(c, c.instances[0])
    assert (s.version, s.priority, s.state, s.strict, s.accept) == (2, 100, "BACKUP", False, True)
    assert (s.garp_master_delay, s.garp_master_repeat, s.garp_lower_prio_delay) == (5, 5, 5)
    assert (s.down_timer_adverts, s.lower_prio_no_advert, s.mcast_group) == (3, False, "224.0.0.18")

    text = "global_defs {\n vrrp_strict\n vrrp_garp_master_delay 2\n vrrp_version 3\n}\n" + MINIMAL
    text = text.replace("interface eth0", "interface eth0\n garp_lower_prio_repeat 9")
    c = parse(text).config
    s = core.vrrp_settings(c, c.instances[0])
    assert (s.version, s.strict, s.accept, s.lower_prio_no_advert) == (3, True, False, True)
    # Strict mode sends no lower-priority GARP burst, whatever was configured.
    assert (s.garp_master_delay, s.garp_lower_prio_delay, s.garp_lower_prio_repeat) == (2, 0, 0)

    text = "global_defs {\n vrrp_garp_master_delay 2\n}\n" + MINIMAL.replace(
        "interface eth0", "interface eth0\n garp_master_repeat 3"
    )
    c = parse(text).config
    s = core.vrrp_settings(c, c.instances[0])
    # The lower-priority burst inherits the global master values, not the instance's.
    assert (s.garp_master_repeat, s.garp_lower_prio_delay, s.garp_lower_prio_repeat) == (3, 2, 5)


def test_vrrp_owner_accepts_and_ipv6_uses_v3(parse: Parse) -> None:
    text = "global_defs {\n vrrp_strict\n}\n" + MINIMAL.replace(
        "interface eth0", "interface eth0\n priority 255"
    )
    c = parse(text).config
    assert core.vrrp_settings(c, c.instances[0]).accept
    v6 = parse(MINIMAL.replace("192.0.2.1/24", "fe80::1/64")).config
    s = core.vrrp_settings(v6, v6.instances[0])
    assert (s.version, s.mcast_group) == (3, "ff02::12")


def test_min_garp(parse: Parse) -> None:
    c = parse("global_defs {\n vrrp_min_garp\n}\n" + MINIMAL).config
    s = core.vrrp_settings(c, c.instances[0])
    assert (s.garp_master_delay, s.garp_master_repeat, s.garp_master_refresh_repeat) == (0, 1, 0)


def test_checker_inheritance(parse: Parse) -> None:
    text = """
virtual_server 192.0.2.1 80 {
  delay_loop 10
  connect_timeout 7
  virtualhost vs.example
  real_server 192.0.2.2 8080 {
    retry 4
    HTTP_GET {
      url {
        path /
      }
    }
    DNS_CHECK {
      connect_port 53
    }
    MISC_CHECK {
      misc_path /bin/x
      delay_loop 2
    }
  }
}
"""
    vs = parse(text, script_env=None).config.virtual_servers[0]
    rs = vs.real_servers[0]
    http, dns, misc = (core.checker_settings(vs, rs, c) for c in rs.checkers)
    assert (http.connect_ip, http.connect_port, http.connect_timeout) == ("192.0.2.2", 8080, 7.0)
    assert (http.retry, http.delay_before_retry, http.delay_loop, http.warmup) == (
        4,
        3.0,
        10.0,
        10.0,
    )
    assert http.virtualhost == "vs.example"
    assert (dns.connect_port, dns.retry, dns.delay_before_retry) == (53, 4, 10.0)
    # misc_timeout defaults to the virtual server's delay_loop (10), not the checker's (2).
    assert (misc.delay_loop, misc.misc_timeout, misc.retry) == (2.0, 10.0, 4)


def test_file_check_never_has_alpha(parse: Parse) -> None:
    text = """track_file tf {
  file /tmp/tf
}
virtual_server 192.0.2.1 80 {
  lb_algo rr
  lb_kind NAT
  protocol TCP
  alpha
  real_server 192.0.2.2 80 {
    FILE_CHECK {
      track_file tf
    }
    TCP_CHECK {
    }
  }
}
"""
    vs = parse(text, script_env=None).config.virtual_servers[0]
    rs = vs.real_servers[0]
    file, tcp = (core.checker_settings(vs, rs, c) for c in rs.checkers)
    assert (file.alpha, tcp.alpha) == (False, True)

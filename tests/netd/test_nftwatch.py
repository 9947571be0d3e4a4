"""netd.nftwatch in a namespace: another process's nftables commit is noticed, netd's own (from
any of its threads) is not."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from pyroute2.netlink.nfnetlink.nftsocket import NFPROTO_INET

from netd.lvs.render import delete_table
from netd.nftbatch import NftSocket
from netd.nftwatch import NftWatch
from tests.lab import Lab

pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(shutil.which("nft") is None, reason="needs nft (Debian nftables)"),
]


def test_foreign_commits_are_noticed_and_ours_are_not(make_lab: Any) -> None:
    lab: Lab = make_lab(1)
    node = lab.node(0)
    watch = node.call(NftWatch)
    try:
        assert watch.read() is False  # nothing happened yet
        node.run(["nft", "add", "table", "inet", "someone_else"])
        assert watch.read() is True
        assert watch.read() is False  # drained
        sock = node.call(NftSocket, NFPROTO_INET)
        # netd commits from its netlink worker thread (alive as long as netd): still ours
        worker = ThreadPoolExecutor(1)
        try:
            worker.submit(sock.transaction, [delete_table("someone_else")]).result()
            assert "someone_else" not in node.run(["nft", "list", "tables"]).stdout
            assert watch.read() is False
        finally:
            worker.shutdown()
            sock.close()
    finally:
        watch.close()

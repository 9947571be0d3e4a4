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
    mine = node.call(NftWatch, {(NFPROTO_INET, "mine")})
    try:
        assert watch.read() is False and mine.read() is False  # nothing happened yet
        node.run(["nft", "add", "table", "inet", "someone_else"])
        assert watch.read() is True
        assert mine.read() is False  # not a watched table
        assert watch.read() is False  # drained
        node.run(["nft", "add", "table", "ip", "mine"])  # same name, another family
        node.run(["nft", "add", "table", "inet", "mine"])
        node.run(["nft", "add", "chain", "inet", "mine", "c"])
        assert mine.read() is True
        node.run(["nft", "add", "table", "ip", "mine"])  # nothing changes in inet mine
        node.run(["nft", "delete", "table", "ip", "mine"])
        assert mine.read() is False
        assert watch.read() is True  # every one of them, for the unfiltered watch
        sock = node.call(NftSocket, NFPROTO_INET)
        # netd commits from its netlink worker thread (alive as long as netd): still ours
        worker = ThreadPoolExecutor(1)
        try:
            requests = [delete_table("someone_else"), delete_table("mine")]
            worker.submit(sock.transaction, requests).result()
            assert "inet" not in node.run(["nft", "list", "tables"]).stdout
            assert watch.read() is False and mine.read() is False
        finally:
            worker.shutdown()
            sock.close()
        node.run(["nft", "add", "table", "inet", "mine"])
        assert watch.read() is True and mine.read() is True
        node.run(["nft", "flush", "ruleset"])  # someone removes everything
        assert watch.read() is True and mine.read() is True
    finally:
        watch.close()
        mine.close()

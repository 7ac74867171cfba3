"""Every `custos` command of README.md's ```sh blocks runs as written, in order, from a
scratch directory with its own CUSTOS_HOME (demo data first, as `make serve` seeds it).

Lines that are not `custos` commands are named here on purpose (the server, curl, the
shell); a new kind of line in a ```sh block fails the test until it is handled.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import Workbook

from tests.test_readme import README, fenced_blocks

# First words of README shell lines that are not run here, and why.
NOT_RUN = {
    "make": "the make targets have their own tests (tests/test_serve.py)",
    "curl": "needs a running server (tests/test_serve.py answers the same query)",
    "source": "a shell's own state",
    "mv": "moves an old installation's files",
    "docker": "needs a container engine",
}
SERVE = "custos serve"  # blocks until stopped: tests/test_serve.py runs it through make
EXPORT_COMMAND = re.compile(r"^export (\w+)=\$\((custos [^)]*)\)$")
EXPORT_VALUE = re.compile(r"^export (CUSTOS_\w+)=(\S+)$")
JWT = re.compile(r"^ey[\w-]+\.[\w-]+\.[\w-]+$")


def shell_lines() -> list[tuple[int, str]]:
    """(README line, command) for every line of every ```sh block, comments removed."""
    found = []
    for block in fenced_blocks(README.read_text()):
        if block.language != "sh":
            continue
        pending = ""
        for offset, raw in enumerate(block.text.splitlines()):
            line = raw.split(" #", 1)[0].strip() if not raw.startswith("#") else ""
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            line, pending = (pending + line).strip(), ""
            if line:
                found.append((block.line + offset, line))
    return found


def _files(work: Path) -> None:
    """The files the README's import examples name."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["name", "phone", "email", "region"])
    sheet.append(["韩梅梅", "13912340001", "han@example.com", "上海"])
    sheet.append(["Li Lei", "13912340002", "li.lei@example.com", "北京"])
    book.save(work / "customers.xlsx")
    chinese = Workbook()
    sheet = chinese.active
    assert sheet is not None
    header = ["客户编号", "客户名称", "手机", "座机", "客户等级", "客户since", "负责人", "营销同意"]
    header += ["微信号", "联系人", "联系人电话", "备注"]
    zhou = ["C-00017", "周晓", "13912340017", "", "高", "2023年3月12日", "张经理", "是"]
    zhou += ["zhou_xiao17", "", "", "每季度回访"]
    wu = ["C-00018", "吴敏", "", "010-6552 9988", "中", "2024/1/5", "", "否"]
    wu += ["", "郑采购", "13912340099", ""]
    sheet.append(header)
    sheet.append(zhou)
    sheet.append(wu)
    chinese.save(work / "客户.xlsx")
    # The same customers again, one of them moved: a re-import that updates.
    update = Workbook()
    sheet = update.active
    assert sheet is not None
    sheet.append(["客户编号", "客户名称", "手机", "地区", "负责人", "备注"])
    sheet.append(["C-00017", "周晓", "13912340017", "杭州", "张经理", "已搬到杭州"])
    sheet.append(["C-00018", "吴敏", "", "", "", ""])
    update.save(work / "客户-更新.xlsx")
    tables = {
        "商品.csv": [
            ["商品编码", "商品名称", "分类", "售价", "成本价"],
            ["TEA-17", "龙井", "茶叶", "¥1,234.50", "800元"],
        ],
        "订单.csv": [
            ["订单号", "客户编号", "商品编码", "数量", "下单日期", "订单状态"],
            ["SO-17", "C-00017", "TEA-17", "1", "2024年5月1日", "已完成"],
            ["SO-17", "C-00017", "TEA-17", "2", "2024年5月1日", "已完成"],
        ],
        "流水.csv": [["客户编号", "日期", "金额"], ["C-90001", "2024/3/5", "¥99.00"]],
    }
    for name, rows in tables.items():
        with (work / name).open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(rows)
    # A client build's manifest of its documents (graphql-codegen's client preset).
    document = "query Me { me { subject } }"
    digest = hashlib.sha256(document.encode()).hexdigest()
    (work / "persisted-documents.json").write_text(json.dumps({digest: document}))
    with (work / "orders.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["customer_ref", "date", "amount"])
        writer.writerows(
            [["13912340001", "2026-01-05", "59.90"], ["li.lei@example.com", "2026-02-01", "120"]]
        )


def test_the_readme_shell_lines_are_known() -> None:
    lines = shell_lines()
    assert any(line.startswith("custos ") for _, line in lines)
    unknown = [
        (number, line)
        for number, line in lines
        if not line.startswith("custos ")
        and not EXPORT_COMMAND.match(line)
        and not EXPORT_VALUE.match(line)
        and line.split()[0] not in NOT_RUN
    ]
    assert unknown == [], "README.md shell lines this test does not know how to run"


@pytest.mark.slow
def test_every_custos_command_in_the_readme_runs(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    _files(work)
    env = {
        **os.environ,
        "CUSTOS_HOME": str(tmp_path / "home"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "COLUMNS": "200",
    }
    for name in ("CUSTOS_DATABASE_URL", "CUSTOS_KEYRING", "CUSTOS_STATE_DIR", "CUSTOS_ENV"):
        env.pop(name, None)
    env.pop("CUSTOS_JWT_SECRET", None)

    def run(command: str, where: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, (
            f"{where}: `{command}` exited {result.returncode}: {result.stderr[-2000:]}"
        )
        assert "Traceback" not in result.stderr, where
        return result

    run("custos demo --customers 40", "the demo data `make serve` seeds")
    ran = 0
    for number, line in shell_lines():
        where = f"README.md line {number}"
        if line.startswith(SERVE) or line.split()[0] in NOT_RUN:
            continue
        if (value := EXPORT_VALUE.match(line)) is not None:
            env[value.group(1)] = value.group(2)
            continue
        if (assigned := EXPORT_COMMAND.match(line)) is not None:
            output = run(assigned.group(2), where).stdout.strip()
            assert JWT.match(output), f"{where}: not one whole token: {output!r}"
            ran += 1
            continue
        shlex.split(line)  # the line is well-formed shell
        run(line, where)
        ran += 1
    assert ran >= 15
    # The redirections wrote where the README says (the JSON Lines window may be empty).
    assert (work / "audit.jsonl").exists()
    assert (work / "audit.csv").read_text().startswith("id,seq,")

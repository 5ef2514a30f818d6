"""Structured logs: one JSON object per line with the correlation fields, written off the logging thread; cheap
lifecycle records that any handler can still format."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from oms.runtime.logs import EventLog, JsonFormatter, configure_logging

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


class Collect(logging.Handler):
    """Keeps every record it is handed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    """A fresh logger under `oms`, left as found."""
    lg = logging.getLogger("oms.test_logs")
    before = (lg.level, list(lg.handlers))
    yield lg
    lg.setLevel(before[0])
    lg.handlers[:] = before[1]


def lines_of(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def test_a_record_is_one_json_line_with_correlation_fields_first() -> None:
    record = logging.LogRecord("oms.fix", logging.INFO, __file__, 1, "order %s", ("acked",), None)
    record.__dict__.update(symbol="AAPL", order_id=1000000001, cl_ord_id="n1", session="S", account="ACC2")

    line = JsonFormatter().format(record)

    assert "\n" not in line
    out = json.loads(line)
    assert list(out) == ["ts", "level", "logger", "msg", "session", "account", "cl_ord_id", "order_id", "symbol"]
    assert (out["level"], out["logger"], out["msg"], out["order_id"]) == ("INFO", "oms.fix", "order acked", 1000000001)
    assert TS.match(out["ts"])  # type: ignore[arg-type]


def test_an_exception_is_carried_in_exc() -> None:
    try:
        raise ValueError("bad tag")
    except ValueError:
        import sys

        record = logging.LogRecord("oms.fix", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())

    out = json.loads(JsonFormatter().format(record))

    assert out["level"] == "ERROR" and "ValueError: bad tag" in out["exc"]


def test_configured_logging_writes_every_oms_logger_at_its_level_and_close_restores(logger: logging.Logger) -> None:
    stream = io.StringIO()
    logs = configure_logging(stream, "INFO")
    parent = logging.getLogger("oms")

    logger.debug("not written")
    logger.info("order received", extra={"cl_ord_id": "c1", "session": "FIX.4.4:OMS->CLIENT44"})
    EventLog(logger).info("order acked", cl_ord_id="c1", order_id=7, account="ACC1")
    logger.warning("venue %s down", "EXCH")
    logs.close()
    logs.close()
    logger.info("after close: not written")

    out = lines_of(stream.getvalue())
    assert [o["msg"] for o in out] == ["order received", "order acked", "venue EXCH down"]
    assert out[0]["cl_ord_id"] == "c1" and out[0]["session"] == "FIX.4.4:OMS->CLIENT44"
    assert (out[1]["order_id"], out[1]["account"], out[1]["level"]) == (7, "ACC1", "INFO")
    assert out[1]["logger"] == logger.name
    assert out[2]["level"] == "WARNING"
    assert all(TS.match(o["ts"]) for o in out)  # type: ignore[arg-type]
    assert parent.level == logging.NOTSET and logs.handler not in parent.handlers
    assert not stream.closed  # a stream given is the caller's


def test_a_path_target_is_created_and_appended_to(tmp_path: Path, logger: logging.Logger) -> None:
    path = tmp_path / "var" / "log" / "oms.jsonl"
    for n in (1, 2):
        with configure_logging(path, logging.INFO):
            logger.info("start", extra={"run": n})

    assert [o["run"] for o in lines_of(path.read_text())] == [1, 2]


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for this")


def test_fields_are_encoded_as_text_when_not_json_and_a_field_that_cannot_be_still_leaves_a_line(
    logger: logging.Logger,
) -> None:
    stream = io.StringIO()
    with configure_logging(stream):
        logger.info("odd", extra={"path": Path("/x/y"), "key": {(1, 2): "tuple key"}})
        logger.info("broken", extra={"weird": Unprintable()})
        logger.info("fine")

    out = lines_of(stream.getvalue())
    assert (out[0]["path"], out[0]["key"]) == ("/x/y", {"(1, 2)": "tuple key"})
    assert out[1]["level"] == "ERROR" and "could not be formatted" in out[1]["msg"]  # type: ignore[operator]
    assert out[1]["record"] == "'broken'"
    assert out[2]["msg"] == "fine"


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level 'LOUD'"):
        configure_logging(io.StringIO(), "LOUD")


def test_event_log_makes_no_record_below_info_and_a_standard_one_at_info(logger: logging.Logger) -> None:
    seen = Collect()
    logger.addHandler(seen)
    events = EventLog(logger)
    logger.setLevel(logging.WARNING)

    events.info("order acked", cl_ord_id="c1")
    quiet = (events.enabled(), len(seen.records))
    logger.setLevel(logging.INFO)
    events.info("order filled", cl_ord_id="c1", exec_id=11)

    assert quiet == (False, 0) and events.enabled()
    (record,) = seen.records
    text = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s %(cl_ord_id)s %(exec_id)d").format(record)
    assert text.endswith(f"INFO {logger.name} order filled c1 11")
    assert 0 <= record.msecs < 1000 and record.relativeCreated > 0

"""FIX fields in Python dicts at the gateway's edges: `Received` (an inbound order message, read once) and `Draft`
(an outbound message as it is built, handed to QuickFIX whole).

Reading or building a QuickFIX message field by field crosses into C++ once per field, and gives up and takes back
the GIL each time: with the sequencer, the committer and the senders all wanting it, each crossing can wait. A
NewOrderSingle is read for some fifteen fields, an ExecutionReport has some twenty. So the reader thread takes an
order message's text once (`Received`) and the codecs read the dict; the codecs build `Draft`s on the sequence and
each session's sender (`fix_gateway.outbox`) makes the QuickFIX message from a draft's text in one call. QuickFIX
parses it, and the session fills the header (CompIDs, MsgSeqNum, SendingTime) and the counts (BodyLength, CheckSum)
when it sends it, as it does for a message built field by field.
"""

from __future__ import annotations

from typing import Any

import quickfix as fix

__all__ = ["Draft", "Received"]

SOH = "\x01"


class Draft:
    """An application message's type and body fields, in the order they were set (setting a tag again replaces its
    value). It answers `setField`, `getField` and `isSetField` as a QuickFIX message does, so the codecs' version
    hooks fill either."""

    __slots__ = ("begin_string", "fields", "msg_type")

    def __init__(self, begin_string: str, msg_type: str, fields: dict[int, str] | None = None) -> None:
        self.begin_string = begin_string
        self.msg_type = msg_type
        self.fields: dict[int, str] = {} if fields is None else fields

    def setField(self, tag: int, value: str) -> None:
        self.fields[tag] = value

    def getField(self, tag: int) -> str:
        """The field's value; raises KeyError when it is not set."""
        return self.fields[tag]

    def isSetField(self, tag: int) -> bool:
        return tag in self.fields

    def copy(self) -> Draft:
        return Draft(self.begin_string, self.msg_type, dict(self.fields))

    def text(self) -> str:
        """The message as FIX text with placeholder BodyLength and CheckSum (QuickFIX sets both when it sends).
        Raises ValueError when a value holds the field separator (SOH): it would split into fields of its own."""
        body = self._body()
        if body.count(SOH) != len(self.fields):
            raise ValueError(f"a field of this {self.msg_type!r} message holds SOH: {body!r}")
        return f"8={self.begin_string}{SOH}9=0{SOH}35={self.msg_type}{SOH}{body}10=000{SOH}"

    def _body(self) -> str:
        return "".join([f"{tag}={value}{SOH}" for tag, value in self.fields.items()])

    def message(self) -> Any:
        """The QuickFIX message (one parse of `text()`, unvalidated: the OMS wrote every field)."""
        return fix.Message(self.text(), False)

    def __repr__(self) -> str:
        return f"Draft({self.begin_string} {self.msg_type}: {self._body().replace(SOH, '|')!r})"


class Received:
    """An inbound application message's fields, read once from its text. `getField`, `isSetField`, `getHeader` and
    `toString` answer as the QuickFIX message's do (a missing field raises `fix.FieldNotFound`), header and body in
    one dict. Where a tag occurs more than once (in a repeating group), the first occurrence counts: the order
    messages' fields the OMS reads are never group members. Immutable, so the sequencer can keep it after QuickFIX
    reuses the message it came from."""

    __slots__ = ("_fields", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        fields: dict[int, str] = {}
        for item in reversed(text.split(SOH)):  # reversed: the first occurrence is written last
            tag, sep, value = item.partition("=")
            if sep:
                fields[int(tag)] = value
        self._fields = fields

    def getField(self, tag: int) -> str:
        try:
            return self._fields[tag]
        except KeyError:
            raise fix.FieldNotFound(tag) from None

    def isSetField(self, tag: int) -> bool:
        return tag in self._fields

    def getHeader(self) -> Received:
        return self

    def toString(self) -> str:
        return self._text

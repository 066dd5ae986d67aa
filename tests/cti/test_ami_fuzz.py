"""Real recorded AMI streams, mutated, through the wire parser, normalise and the tracker.

Whatever a peer sends, nothing may escape the ingest path, a good frame after a
bad one must still arrive, and the way reads happen to be cut must not change
what the desk concludes from a healthy stream.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cti.events import CallEvent, CallFact, ChannelHungUp
from cti.frames import FieldSet, Frame
from cti.normalise import EVENT_NAMES, normalise
from cti.recordings import load_recording, recording_names
from cti.tracker import CallTracker
from cti.wire import FrameParser

RECEIVED = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
TRUNKS = frozenset({"PJSIP/trunk"})
NAMES = recording_names()
GOOD = b"Event: Hangup\r\nChannel: PJSIP/1001-00000fff\r\nUniqueid: 9.9\r\nLinkedid: 9.9\r\n\r\n"
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


@functools.cache
def stream(name: str) -> bytes:
    return load_recording(name).stream()


@functools.cache
def frame_texts(name: str) -> tuple[str, ...]:
    """Each received frame's text as the wire parser hands it over."""
    return tuple(f.encode().decode()[:-4] for f in FrameParser().feed(stream(name)))


# -- mutations ---------------------------------------------------------------------------

positions = st.floats(min_value=0, max_value=1, exclude_max=True)


def _at(data: bytes, where: float) -> int:
    return int(where * len(data))


@st.composite
def mutation(draw: st.DrawFn, data: bytes) -> bytes:
    kind = draw(
        st.sampled_from(
            ["flip", "truncate", "garbage", "huge", "drop-line", "repeat-line", "not-utf8"]
        )
    )
    if not data:
        return draw(st.binary(max_size=300))
    at = _at(data, draw(positions))
    if kind == "flip":
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    if kind == "truncate":
        return data[:at]
    if kind == "garbage":
        return data[:at] + draw(st.binary(min_size=1, max_size=300)) + data[at:]
    if kind == "not-utf8":
        bad = draw(st.sampled_from([b"\xff", b"\xc3", b"\x80\x80", b"\xed\xa0\x80", b"\xf4\x90"]))
        return data[:at] + bad + data[at:]
    start = data.rfind(b"\r\n", 0, at) + 2
    end = data.find(b"\r\n", at)
    if end < 0:
        return data
    if kind == "huge":
        size = draw(st.sampled_from([10_000, 200_000]))
        return data[:end] + b"x" * size + data[end:]
    if kind == "drop-line":  # a key the event needs goes missing
        return data[:start] + data[end + 2 :]
    return data[: end + 2] + data[start : end + 2] + data[end + 2 :]  # repeat-line: duplicate key


@st.composite
def mutated_stream(draw: st.DrawFn) -> bytes:
    data = stream(draw(st.sampled_from(NAMES)))
    for _ in range(draw(st.integers(1, 4))):
        data = draw(mutation(data))
    return data


@st.composite
def cuts(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` in reads cut at arbitrary points (a UTF-8 character may straddle two)."""
    points = sorted(draw(st.lists(st.integers(0, len(data)), max_size=40)))
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]


# -- the ingest path as production runs it -------------------------------------------------


def ingest(reads: Iterable[bytes], *, skip_unused: bool) -> tuple[list[CallEvent], list[CallFact]]:
    parser = FrameParser(events=EVENT_NAMES if skip_unused else None)
    tracker = CallTracker(trunks=TRUNKS)
    events: list[CallEvent] = []
    facts: list[CallFact] = []
    for data in reads:
        for frame in parser.feed(data):
            event = normalise(frame, received_at=RECEIVED)
            if event is not None:
                events.append(event)
                facts.extend(tracker.apply(event))
    return events, facts


# -- properties ------------------------------------------------------------------------------


@FUZZ
@given(data=st.data())
def test_a_mutated_stream_never_raises_and_a_good_frame_after_it_still_arrives(
    data: st.DataObject,
) -> None:
    mutated = data.draw(mutated_stream())
    # A blank line closes whatever the mutation left open, then a healthy frame follows.
    reads = data.draw(cuts(mutated + b"\r\n\r\n" + GOOD))
    for skip_unused in (False, True):
        events, _ = ingest(reads, skip_unused=skip_unused)
        assert events, "the good frame was lost"
        last = events[-1]
        assert isinstance(last, ChannelHungUp)
        assert (last.channel.uniqueid, last.channel.interface) == ("9.9", "PJSIP/1001")


@FUZZ
@given(data=st.data())
def test_a_recorded_stream_gives_the_same_events_and_facts_however_its_reads_are_cut(
    data: st.DataObject,
) -> None:
    name = data.draw(st.sampled_from(NAMES))
    whole = ingest([stream(name)], skip_unused=False)
    assert whole[0], f"{name} gave no events"
    assert ingest(data.draw(cuts(stream(name))), skip_unused=False) == whole
    assert ingest(data.draw(cuts(stream(name))), skip_unused=True) == whole


@st.composite
def mutated_frame(draw: st.DrawFn) -> str:
    texts = frame_texts(draw(st.sampled_from(NAMES)))
    text = draw(st.sampled_from(texts))
    raw = text.encode()
    for _ in range(draw(st.integers(0, 3))):
        raw = draw(mutation(raw))
    # Mixed-case and repeated keys, bare LFs, odd lines: whatever the bytes decode to.
    return raw.decode("utf-8", "replace")


any_value = st.one_of(
    st.text(alphabet=st.characters(exclude_characters="\r\n"), max_size=40),
    st.from_regex(r"-?[0-9]{1,25}(\.[0-9]{0,9})?(e[+-]?[0-9]{1,4})?", fullmatch=True),
    st.sampled_from(["nan", "inf", "-inf", "<unknown>", "(null)", "²", "١٢", " 7", ""]),
)
clock_value = st.one_of(
    any_value,
    st.datetimes(timezones=st.timezones()).map(datetime.isoformat),
    # The ends of the calendar with an offset: some have no UTC date.
    st.builds(
        lambda day, minutes: day.replace(tzinfo=timezone(timedelta(minutes=minutes))).isoformat(),
        st.sampled_from([datetime.min, datetime.max]),
        st.integers(-1439, 1439),
    ),
)


@FUZZ
@given(field=st.sampled_from(["Timestamp", "EventTV"]), value=clock_value)
def test_any_pbx_clock_value_gives_an_aware_time_and_never_raises(field: str, value: str) -> None:
    text = f"Event: Hangup\r\nChannel: PJSIP/1001-1\r\nUniqueid: 1.1\r\nLinkedid: 1.1\r\n{field}: "
    event = normalise(Frame.from_text(text + value), received_at=RECEIVED)
    assert event is not None
    assert event.at.utcoffset() == timedelta(0)


@st.composite
def odd_values(draw: st.DrawFn) -> str:
    """A recorded event frame with some of its values set to anything."""
    text = draw(st.sampled_from(frame_texts(draw(st.sampled_from(NAMES)))))
    lines = text.split("\r\n")
    for _ in range(draw(st.integers(1, 4))):
        key = draw(st.sampled_from([line.partition(": ")[0] for line in lines[1:]] or ["X"]))
        lines.append(f"{key}: {draw(any_value)}")  # a repeated key: the first one still counts
        at = draw(st.integers(1, max(len(lines) - 1, 1)))
        lines[at] = f"{lines[at].partition(': ')[0]}: {draw(any_value)}"
    return "\r\n".join(lines)


@FUZZ
@given(text=odd_values())
def test_any_value_in_any_field_is_read_or_the_frame_dropped_never_raised(text: str) -> None:
    frame = Frame.from_text(text)
    event = normalise(frame, received_at=RECEIVED)
    if event is not None:
        CallTracker(trunks=TRUNKS).apply(event)
        assert event.at.tzinfo is not None


# Every field any reader of the desk asks for, plus a few that frames rarely carry.
EVERY_FIELD = FieldSet(
    "Event", "Channel", "Uniqueid", "Linkedid", "DestUniqueid", "CallerIDNum", "Queue",
    "Interface", "MemberName", "Timestamp", "EventTV", "Privilege", "Exten", "ActionID",
)  # fmt: skip


@FUZZ
@given(text=mutated_frame())
def test_picking_fields_from_any_frame_finds_what_get_finds(text: str) -> None:
    event = Frame.from_text(text).event
    for _ in range(2):  # the first pick may learn the frame's layout, the second uses it
        picked = Frame.from_text(text, event).pick(EVERY_FIELD)
        assert picked == tuple(Frame.from_text(text).get(name) for name in EVERY_FIELD.names)
    # The same frame built from its pairs (as other AMI libraries' frames are) agrees.
    plain = Frame(Frame.from_text(text).pairs)
    assert plain.pick(EVERY_FIELD) == picked

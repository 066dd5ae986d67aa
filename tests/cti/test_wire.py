"""The AMI stream parser against real recorded Asterisk byte streams."""

from __future__ import annotations

import functools
import pickle
import random
from collections.abc import Callable

import pytest

from cti.frames import FieldSet, Frame
from cti.recordings import load_recording, recording_names
from cti.wire import FrameParser
from tests.cti.conftest import MakeLink, eventually

BANNER = "Asterisk Call Manager/11.0.0"


def reference_frames(recv_texts: list[str]) -> list[Frame]:
    """Independent, obviously-correct parse of whole recorded frames."""
    frames = []
    for text in recv_texts:
        lines = [line for line in text.split("\r\n") if line]
        frames.append(Frame(tuple((k, v) for k, _, v in (ln.partition(": ") for ln in lines))))
    return frames


def feed_in_chunks(data: bytes, next_size: Callable[[], int]) -> tuple[FrameParser, list[Frame]]:
    parser, frames, pos = FrameParser(), [], 0
    while pos < len(data):
        size = next_size()
        frames += parser.feed(data[pos : pos + size])
        pos += size
    return parser, frames


@pytest.mark.parametrize("name", recording_names())
def test_every_recording_parses_the_same_whole_or_split_at_random_byte_boundaries(
    name: str,
) -> None:
    recording = load_recording(name)
    stream = recording.stream()
    texts = [chunk.data.decode() for chunk in recording.recv[1:]]
    expected = reference_frames(texts)

    parser = FrameParser()
    assert parser.feed(stream) == expected
    assert parser.banner == BANNER

    for seed in range(12):
        rng = random.Random(seed)
        top = rng.choice([3, 16, 64, 700, 5000])
        parser, frames = feed_in_chunks(stream, functools.partial(rng.randint, 1, top))
        assert frames == expected, f"seed {seed}"
        assert [f.pairs for f in frames] == [f.pairs for f in expected]
        assert parser.banner == BANNER

    _, one_byte = feed_in_chunks(stream, lambda: 1)
    assert one_byte == expected
    assert [(f.event, f.response, f.action_id) for f in one_byte] == [
        (f.event, f.response, f.action_id) for f in expected
    ]


def test_a_utf8_character_split_across_reads_is_decoded_whole() -> None:
    data = "Event: Newchannel\r\nCallerIDName: Zoë\r\n\r\n".encode()
    cut = data.index("ë".encode()) + 1  # between the two bytes of ë
    parser = FrameParser(expect_banner=False)
    assert parser.feed(data[:cut]) == []
    (frame,) = parser.feed(data[cut:])
    assert frame["CallerIDName"] == "Zoë"


def test_invalid_utf8_is_replaced_instead_of_raising() -> None:
    parser = FrameParser(expect_banner=False)
    (frame,) = parser.feed(b"Event: X\r\nName: Zo\xff\xfe\r\n\r\n")
    assert frame["Name"] == "Zo\ufffd\ufffd"


@pytest.mark.parametrize("seed", range(20))
def test_garbage_bytes_never_crash_the_parser_and_it_recovers_at_the_next_boundary(
    seed: int,
) -> None:
    rng = random.Random(seed)
    garbage = bytes(rng.randrange(256) for _ in range(rng.randint(1, 5000)))
    parser = FrameParser()
    for frame in parser.feed(garbage + b"\r\n\r\n"):
        _ = frame.pairs, frame.event, frame.response, frame.get("Uniqueid")
    assert parser.feed(b"Event: Hangup\r\nUniqueid: 1.2\r\n\r\n") == [
        Frame.of(Event="Hangup", Uniqueid="1.2")
    ]


def test_a_frame_over_the_limit_is_dropped_and_parsing_resumes_after_it() -> None:
    huge = b"Event: Huge\r\nData: " + b"x" * (1 << 20) + b"\r\n\r\n"
    stream = b"Event: A\r\n\r\n" + huge + b"Event: B\r\n\r\n"
    parser, frames = feed_in_chunks(stream, lambda: 65536)
    assert [f.event for f in frames] == ["A", "B"]
    assert parser.frames_dropped == 1


def test_an_oversized_frame_arriving_whole_is_dropped_too() -> None:
    parser = FrameParser(max_frame_bytes=100, expect_banner=False)
    frames = parser.feed(b"Event: A\r\nX: " + b"y" * 200 + b"\r\n\r\nEvent: B\r\n\r\n")
    assert [f.event for f in frames] == ["B"]
    assert parser.frames_dropped == 1


def test_keys_keep_their_case_values_may_be_empty_and_keys_repeat() -> None:
    parser = FrameParser(expect_banner=False)
    raw = b"Event: VarSet\r\nAccountCode: \r\nChanVariable: a=1\r\nchanvariable: b=2\r\n\r\n"
    (frame,) = parser.feed(raw)
    assert frame.pairs == (
        ("Event", "VarSet"),
        ("AccountCode", ""),
        ("ChanVariable", "a=1"),
        ("chanvariable", "b=2"),
    )
    assert frame.getall("CHANVARIABLE") == ["a=1", "b=2"]


def test_lines_without_colon_space_are_kept() -> None:
    parser = FrameParser(expect_banner=False)
    (frame,) = parser.feed(
        b"Response: Success\r\nOutput:\r\nKey:value\r\nplain output line\r\n\r\n"
    )
    assert frame.pairs == (
        ("Response", "Success"),
        ("Output", ""),
        ("Key", "value"),
        ("Output", "plain output line"),
    )


def test_bare_lf_blank_lines_also_end_frames() -> None:
    parser = FrameParser(expect_banner=False)
    frames = parser.feed(b"Event: A\nX: 1\n\nEvent: B\r\n\r\nEvent: C\n")
    assert [f.pairs for f in frames] == [(("Event", "A"), ("X", "1")), (("Event", "B"),)]
    assert [f.event for f in parser.feed(b"\n")] == ["C"]


def test_legacy_command_output_keeps_its_blank_lines_until_end_command() -> None:
    parser = FrameParser(expect_banner=False)
    raw = (
        b"Response: Follows\r\nPrivilege: Command\r\nActionID: 7\r\n"
        b"Name: line one\n\nlast line\n--END COMMAND--\r\n\r\nEvent: After\r\n\r\n"
    )
    frames = parser.feed(raw[:60]) + parser.feed(raw[60:])
    assert frames[0].action_id == "7"
    assert frames[0].getall("Output") == ["Name: line one", "", "last line"]
    assert frames[1].event == "After"


def test_legacy_command_output_among_filtered_events_keeps_its_crlf_blank_lines() -> None:
    parser = FrameParser(expect_banner=False, events={"a"})
    assert [f.event for f in parser.feed(b"Event: A\r\n\r\nEvent: B\r\n\r\n")] == ["A"]
    frames = parser.feed(
        b"Event: A\r\n\r\nResponse: Follows\r\nActionID: 7\r\n"
        b"one\r\n\r\ntwo\n--END COMMAND--\r\n\r\nEvent: B\r\n\r\nEvent: A\r\n\r\n"
    )
    assert [f.event for f in frames] == ["A", None, "A"]
    assert frames[1].action_id == "7"
    assert frames[1].getall("Output") == ["one", "", "two"]
    assert parser.frames_skipped == 2


def test_the_banner_is_exposed_and_a_stream_without_one_still_parses() -> None:
    parser = FrameParser()
    assert parser.feed(b"Asterisk Call Man") == []
    assert parser.feed(b"ager/11.0.0\r\nEvent: A\r\n\r\n") == [Frame.of(Event="A")]
    assert parser.banner == BANNER

    bare = FrameParser()
    assert bare.feed(b"Event: A\r\n\r\n") == [Frame.of(Event="A")]
    assert bare.banner is None


def test_wire_frames_equal_plain_frames_and_pickle_as_plain_frames() -> None:
    (frame,) = FrameParser(expect_banner=False).feed(b"Event: A\r\nUniqueid: 1.1\r\n\r\n")
    plain = Frame.of(Event="A", Uniqueid="1.1")
    assert frame.event == "A"
    assert frame == plain and plain == frame and hash(frame) == hash(plain)
    assert {frame, plain} == {plain}
    restored = pickle.loads(pickle.dumps(frame))
    assert type(restored) is Frame and restored == plain


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (Frame.from_text("Event: Hangup\r\nUniqueid: 1"), True),
        (Frame.from_text("Response: Success\r\nActionID: 1"), False),
        (Frame.from_text("ActionID: 1\r\nevent: Hangup"), True),
        (Frame.of(Event="Hangup"), True),
        (Frame.of(Response="Success"), False),
    ],
    ids=["wire-event", "wire-response", "event-key-not-first", "built-event", "built-response"],
)
def test_a_frame_is_an_event_exactly_when_it_has_an_event_key(frame: Frame, expected: bool) -> None:
    assert frame.is_event is expected
    assert (frame.event is not None) is expected


@pytest.mark.parametrize("name", recording_names())
def test_an_event_filter_returns_the_named_events_and_every_response_and_counts_the_rest(
    name: str,
) -> None:
    wanted = frozenset({"newchannel", "hangup", "queuememberstatus", "coreshowchannel"})
    stream = load_recording(name).stream()
    everything = FrameParser().feed(stream)
    expected = [f for f in everything if not f.is_event or (f.event or "").lower() in wanted]
    for seed in range(4):
        rng = random.Random(seed)
        parser = FrameParser(events=wanted)
        frames: list[Frame] = []
        pos = 0
        while pos < len(stream):
            size = rng.randint(1, 5000)
            frames += parser.feed(stream[pos : pos + size])
            pos += size
        assert frames == expected, f"seed {seed}"
        assert [f.event for f in frames] == [f.event for f in expected]
        assert parser.frames_skipped == len(everything) - len(expected)


def test_the_event_filter_ignores_the_case_of_event_names_and_can_be_lifted() -> None:
    parser = FrameParser(expect_banner=False, events=frozenset({"hangup"}))
    data = b"Event: HANGUP\r\n\r\nEvent: VarSet\r\n\r\nResponse: Success\r\n\r\n"
    assert [f.event or f.response for f in parser.feed(data)] == ["HANGUP", "Success"]
    parser.events = None
    assert [f.event for f in parser.feed(b"Event: VarSet\r\n\r\n")] == ["VarSet"]


@pytest.mark.parametrize(
    ("data", "kept"),
    [
        (b"Event: Hangup\r\nUniqueid: 1.1\r\n\r\n", ["Hangup"]),
        (b"Event: VarSet\r\nUniqueid: 1.1\r\n\r\n", []),
        (b"Event: hangup\r\n\r\n", ["hangup"]),
        (b"Event: Hangup\nUniqueid: 1.1\r\n\r\n", ["Hangup"]),
        (b"Event: Hangup\rUniqueid: 1.1\r\n\r\n", []),
        (b"Event: Hangup\r\r\n\r\n", []),
        (b"Event: \r\n\r\n", []),
        (b"Response: Success\r\nActionID: 1\r\n\r\n", [None]),
        (b"Uniqueid: 1.1\r\nEvent: Hangup\r\n\r\n", ["Hangup"]),
        (b"Uniqueid: 1.1\r\nEvent: VarSet\r\n\r\n", []),
        (b"\r\nEvent: Hangup\r\n\r\n", ["Hangup"]),
    ],
    ids=[
        "wanted",
        "unwanted",
        "other-case",
        "bare-lf-ends-the-name",
        "cr-inside-the-name",
        "cr-ends-the-name",
        "empty-name",
        "response",
        "event-key-not-first",
        "unwanted-event-key-not-first",
        "leading-blank-line",
    ],
)
def test_the_event_filter_treats_a_first_line_seen_before_as_it_did_the_first_time(
    data: bytes, kept: list[str | None]
) -> None:
    parser = FrameParser(expect_banner=False, events=frozenset({"hangup"}))
    padding = b"Event: VarSet\r\n\r\nEvent: Hangup\r\n\r\n"
    first = parser.feed(data + padding)
    again = parser.feed(data + padding)  # every first line known now
    assert again == first
    assert [f.event for f in again] == [f.event for f in first] == [*kept, "Hangup"]
    assert parser.frames_skipped == 2 * (2 - len(kept))


def test_a_field_after_a_bare_lf_is_found_where_the_pairs_list_it() -> None:
    frame = Frame.from_text("Event: Hangup\r\nChannel: PJSIP/1-1\nUniqueid: 1.1\r\nLinkedid: 1.1")
    assert ("Uniqueid", "1.1") in frame.pairs
    assert frame.get("Uniqueid") == "1.1"
    assert frame["Channel"] == "PJSIP/1-1"


def test_picked_fields_are_what_get_finds_whatever_the_layout() -> None:
    fields = FieldSet("Uniqueid", "ChanVariable", "Missing")
    texts = [
        "Event: Pick\r\nUniqueid: 1.1\r\nChanVariable: a=1\r\nchanvariable: b=2",
        "Event: Pick\r\nUniqueid: 2.2\r\nChanVariable: c=3\r\nchanvariable: d=4",  # learned
        "Event: Pick\r\nUNIQUEID: 3.3\r\nuniqueid: 4.4",  # another spelling, a repeat
        "Event: Pick\r\nUniqueid: 5.5\nChanVariable: e=5",  # a bare LF: not a layout
    ]
    for text in texts:
        frame = Frame.from_text(text)
        assert frame.pick(fields) == tuple(frame.get(name) for name in fields.names)
    assert Frame.from_text(texts[1]).pick(fields) == ("2.2", "c=3", None)


def test_a_filter_that_wants_the_empty_event_name_gets_it_on_every_read() -> None:
    parser = FrameParser(expect_banner=False, events=frozenset({""}))
    data = b"Event: \r\nUniqueid: 1.1\r\n\r\nEvent: VarSet\r\n\r\n"
    for _ in range(2):  # the second read finds the first lines remembered
        assert [f.event for f in parser.feed(data)] == [""]
    assert parser.frames_skipped == 2


async def test_a_client_with_an_event_filter_still_collects_lists_of_events_it_skips(
    make_link: MakeLink,
) -> None:
    link = await make_link(events=frozenset({"fullybooted"}))
    await eventually(lambda: bool(link.events("FullyBooted")))
    result = await link.client.send_list_action("QueueStatus")
    assert result.ok
    assert {f.event for f in result.events} >= {"QueueParams", "QueueMember"}
    assert all(frame.event == "FullyBooted" for frame in link.frames if frame.is_event)

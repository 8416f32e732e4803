"""The frames the live fan-out builds once per delta must be what any client parses, plain or
compressed, whatever the client negotiated."""

from __future__ import annotations

import random

import pytest
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from streamsvc.web.wsframes import Outgoing, deflate_frame, text_frame


def parse(data: bytes, extensions=None) -> Frame:
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False, extensions=extensions)
    try:
        next(parser)
    except StopIteration as done:
        return done.value
    raise AssertionError("the frame is incomplete")


def delta(size: int) -> bytes:
    rng = random.Random(size)
    sites = ",".join(
        f'{{"id":{i},"present":{rng.randrange(500)},"connected":true}}' for i in range(size)
    )
    return f'{{"type":"delta","seq":{size},"sites":[{sites}]}}'.encode()


@pytest.mark.parametrize("size", [0, 1, 3, 10, 2_000, 20_000])
def test_a_prebuilt_frame_parses_back_to_its_payload(size):
    payload = delta(size)
    frame = parse(text_frame(payload))
    assert (frame.opcode, frame.fin, frame.rsv1, frame.data) == (Opcode.TEXT, True, False, payload)


@pytest.mark.parametrize("window_bits", [9, 12, 15])
def test_compressed_frames_decode_in_a_client_that_carries_context_over(window_bits):
    """Each frame is compressed on its own; a client keeping its window across messages (the
    default) must still read every one, in any order, among uncompressed ones."""
    client = PerMessageDeflate(
        remote_no_context_takeover=False,
        local_no_context_takeover=False,
        remote_max_window_bits=window_bits,
        local_max_window_bits=15,
    )
    messages = [delta(n) for n in (5, 2_000, 40, 20_000, 2_000)]
    for i, payload in enumerate(messages):
        built = deflate_frame(payload, window_bits) if i != 2 else text_frame(payload)
        frame = parse(built, extensions=[client])
        assert (frame.opcode, frame.data) == (Opcode.TEXT, payload)
    assert len(deflate_frame(messages[3], window_bits)) < len(messages[3]) / 4


def test_outgoing_builds_each_encoding_once():
    out = Outgoing(delta(100))
    assert out.frame(15) is out.frame(15)
    assert out.frame(0) == text_frame(out.data)
    assert out.frame(8) == text_frame(out.data)  # a window zlib cannot make: sent plain

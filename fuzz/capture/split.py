#!/usr/bin/env python3
"""Splits recorded streams (relay.py's *.bin) into seed files for the fuzz targets:
corpus/frame/ gets each whole stream's first frames and each single frame (with the target's
leading read-size byte); corpus/messages/ gets each request/one-way body, once per enum
selector byte (the target ignores bodies that do not decode as the chosen enum).

Usage: split.py CAPTURE_DIR CORPUS_DIR
"""
import hashlib
import os
import struct
import sys

ENUMS = 14  # the number of enums fuzz_targets/messages.rs selects among


def frames(stream):
    at = 0
    while at + 4 <= len(stream):
        (length,) = struct.unpack(">I", stream[at:at + 4])
        if length < 9 or at + 4 + length > len(stream):
            return
        yield stream[at:at + 4 + length]
        at += 4 + length


def body(frame):
    kind, payload = frame[4], frame[13:]
    if kind not in (1, 4):
        return None
    at = 0
    if payload[at:at + 1] == b"\x01":
        (host_len,) = struct.unpack(">I", payload[at + 1:at + 5])
        at += 1 + 4 + host_len + 2
    elif payload[at:at + 1] == b"\x00":
        at += 1
    else:
        return None
    (name_len,) = struct.unpack(">I", payload[at:at + 4])
    return payload[at + 4 + name_len:]


def save(directory, data):
    os.makedirs(directory, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def main():
    capture, corpus = sys.argv[1], sys.argv[2]
    for name in sorted(os.listdir(capture)):
        with open(os.path.join(capture, name), "rb") as f:
            stream = f.read()
        all_frames = list(frames(stream))
        save(os.path.join(corpus, "frame"), b"\x07" + b"".join(all_frames[:8]))
        for fr in all_frames:
            save(os.path.join(corpus, "frame"), b"\xff" + fr)
            b = body(fr)
            if b:
                for which in range(ENUMS):
                    save(os.path.join(corpus, "messages"), bytes([which]) + b)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Verify a Handover log export without Handover: `python3 verify_export.py FILE`.

Needs only the `blake3` package (pip install blake3). Follows docs/log-format.md.
Exit 0 when the chain is intact, 1 naming the first bad seq, 2 when FILE is not an export.
"""
import struct, sys
from blake3 import blake3

PAYLOAD_CONTEXT = "handover 2026-12-04 log payload v1"
ENTRY_CONTEXT = "handover 2026-12-04 log entry v1"

def derive_key(context, material):
    return blake3(material, derive_key_context=context).digest()

def main(path):
    data = open(path, "rb").read()
    if len(data) < 96 or data[:8] != b"HNDVRLOG" or struct.unpack_from("<I", data, 8)[0] != 1:
        print(f"{path}: not a version 1 Handover log export"); return 2
    first_seq, count = struct.unpack_from("<QQ", data, 16)
    anchor, head = data[32:64], data[64:96]
    seq, prev, pos = first_seq, anchor, 96
    for _ in range(count):
        if pos + 4 > len(data):
            print(f"seq {seq}: truncated"); return 1
        (length,) = struct.unpack_from("<I", data, pos)
        entry = data[pos + 4 : pos + 4 + length]
        pos += 4 + length
        if length < 112 or len(entry) < length:
            print(f"seq {seq}: undecodable or truncated entry"); return 1
        if struct.unpack_from("<Q", entry, 0)[0] != seq:
            print(f"seq {seq}: gap"); return 1
        if entry[16:48] != prev:
            print(f"seq {seq}: prev mismatch"); return 1
        if derive_key(ENTRY_CONTEXT, entry[:80]) != entry[80:112]:
            print(f"seq {seq}: hash mismatch"); return 1
        if derive_key(PAYLOAD_CONTEXT, entry[112:]) != entry[48:80]:
            print(f"seq {seq}: payload hash mismatch"); return 1
        seq, prev = seq + 1, entry[80:112]
    if pos != len(data):
        print(f"seq {seq}: data after the last entry"); return 1
    if prev != head:
        print(f"seq {seq - 1}: header mismatch"); return 1
    print(f"ok: {count} entries, head seq {seq - 1}, head hash {prev.hex()}")
    return 0

if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

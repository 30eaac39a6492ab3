#!/usr/bin/env python3
"""Writes the hand-made seed corpus of the decoder fuzzer (Tools/Fuzz/corpus/seed-*).

Seeds are the shapes the decoders meet: request bodies (from data/samples and the API's edge
cases), JSON Lines files, and stored log entries in EntryCodec format 1 (written here by a
small re-implementation of the encoder, so the seeds need no Swift build). Files the fuzzer
added (crash inputs, a merged corpus) have other names and are left alone.
"""
import json
import pathlib
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "Tools" / "Fuzz" / "corpus"
SAMPLES = ROOT / "data" / "samples"


def lines(name):
    return [json.loads(l) for l in (SAMPLES / name).read_text().splitlines() if l.strip()]


def canonical(v):
    # Our JSON writer: sorted keys, no spaces, non-ASCII as is.
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def zigzag(n):
    return varint(((n << 1) ^ (n >> 63)) & 0xFFFFFFFFFFFFFFFF)


def string(s):
    b = s.encode() if isinstance(s, str) else s
    return varint(len(b)) + b


def optional(s):
    return b"\x00" if s is None else b"\x01" + string(s)


def head(type_code, ts=1_795_973_302_123):
    return bytes([1, type_code]) + struct.pack(">q", ts)


def notification(n, received=1_795_973_300_000):
    b = head(1) + string(n["user_id"]) + string(n["room_id"]) + string(n["event_id"])
    b += zigzag(n["stream_ordering"]) + string(canonical(n["actions"]))
    b += string(n.get("thread_id", "main")) + zigzag(received) + string(canonical(n["event"]))
    ctx = n.get("context")
    return b + (b"\x00" if ctx is None else b"\x01" + string(canonical(ctx)))


def receipt(r):
    b = head(2) + string(r["user_id"]) + string(r["room_id"]) + string(r["event_id"])
    b += zigzag(r["stream_ordering"]) + bytes([0 if r["receipt_type"] == "m.read" else 1])
    return b + optional(r.get("thread_id")) + zigzag(r.get("ts", 1_795_973_300_000))


def pusher_set(p):
    b = head(3) + string(p["user_id"]) + string(p["app_id"]) + string(p["pushkey"])
    b += bytes([0 if p["kind"] == "http" else 1])
    b += string(p.get("app_display_name", "")) + string(p.get("device_display_name", "")) + string(p.get("lang", "en"))
    b += optional(p.get("profile_tag")) + string(canonical(p["data"]))
    return b + bytes([(1 if p.get("append") else 0) | (0 if p.get("enabled") is False else 2)]) + zigzag(1_795_973_302_123)


def pusher_removed(p):
    return head(4) + string(p["user_id"]) + string(p["app_id"]) + string(p["pushkey"])


def main():
    notes, pushers, receipts = lines("notifications.jsonl"), lines("pushers.jsonl"), lines("receipts.jsonl")
    member = {"user_id": "@alice:example.org", "room_id": "!r:example.org", "event_id": "$m\"1", "stream_ordering": 7,
              "actions": ["notify", {"set_tweak": "sound", "value": "default"}, {"set_tweak": "custom", "value": {"z": 1, "a": [None, 1.5]}}],
              "event": {"type": "m.room.member", "sender": "@bob:example.org", "state_key": "@alice:example.org",
                        "content": {"membership": "invite", "displayname": "A\\b"}, "origin_server_ts": 1},
              "context": {"room_alias": "#r:example.org", "sender_display_name": 3, "member_count": 2}}
    seeds = {}
    for i, n in enumerate(notes + [member]):
        seeds[f"notification-body-{i}.json"] = json.dumps({"notifications": [n]}).encode()
        seeds[f"entry-notification-{i}.bin"] = notification(n)
    seeds["notification-batch.json"] = json.dumps({"notifications": notes}).encode()
    for i, r in enumerate(receipts):
        seeds[f"receipt-body-{i}.json"] = json.dumps({"receipts": [r]}).encode()
        seeds[f"entry-receipt-{i}.bin"] = receipt(r)
    for i, p in enumerate(pushers):
        seeds[f"pusher-body-{i}.json"] = json.dumps(p).encode()
        seeds[f"entry-pusher-set-{i}.bin"] = pusher_set(p)
    seeds["pusher-remove.json"] = json.dumps({**pushers[0], "kind": None}).encode()
    seeds["entry-pusher-removed.bin"] = pusher_removed(pushers[0])
    seeds["pusher-profile-tag.json"] = json.dumps({**pushers[0], "profile_tag": "t", "append": True, "enabled": False,
                                                   "data": {"url": "https://gw.example/_matrix/push/v1/notify", "format": "event_id_only",
                                                            "org.matrix.msc4076.disable_badge_count": True}}).encode()
    seeds["rewind-pos.json"] = b'{"to_pos": 1, "user_id": "@alice:example.org"}'
    seeds["rewind-since.json"] = b'{"since_ts": 1795973302123, "app_id": "org.example.app.ios", "pushkey": "alice-phone"}'
    for name in ["notifications", "pushers", "receipts"]:
        seeds[f"lines-{name}.jsonl"] = (SAMPLES / f"{name}.jsonl").read_bytes()
    seeds["json-escapes.json"] = b'{"s": "\\u00e9\\ud83d\\ude00\\n\\"\\\\\\/", "n": [-0, 1e300, -1.5e-7, 9223372036854775807], "t": [true, false, null, {}]}'
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("seed-*"):
        old.unlink()
    for name, data in seeds.items():
        (OUT / f"seed-{name}").write_bytes(data)
    print(f"{len(seeds)} seeds in {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

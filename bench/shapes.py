"""Input shapes for the refine benchmark: records written the way producers other than
stocklake's simulator write them, from the simulator's events (so the catalogue, stores and
quantities stay realistic).

usage: python shapes.py SHAPE N CANONICAL.ndjson LEGACY.ndjson OUT.ndjson [SEED]

  basket  the simulator's canonical events as they are (about 8 lines each, keys in the
          contract's order)
  legacy  the original design's producer: one flat sale line per record
  small   canonical events of 1-3 lines (a basket cut into pieces, each its own event), keys
          in a different order in every record and every line, as a producer's dicts give
          them, optional fields present
  mixed   small, with 5% legacy records in between, 3% exact repeats, 1% malformed records
          and 5% of events dated 1-20 days late

Writes N records (fewer when the inputs run out) and prints one JSON line describing them.
"""
import datetime
import json
import random
import sys


def shuffled(d, rng):
    """The same object, its keys in a random order (and its lines' keys too)."""
    keys = list(d)
    rng.shuffle(keys)
    out = {}
    for k in keys:
        v = d[k]
        if k == "lines":
            v = [shuffled(line, rng) for line in v]
        out[k] = v
    return out


def small_events(canonical, rng):
    """Each canonical event cut into events of 1-3 lines, optional fields filled in."""
    for text in canonical:
        try:
            e = json.loads(text)
        except ValueError:
            continue
        lines = e.get("lines")
        if not isinstance(e, dict) or not isinstance(lines, list) or not lines:
            continue
        at = 0
        piece = 0
        while at < len(lines):
            n = rng.randint(1, 3)
            part = dict(e)
            part["event_id"] = f"{e['event_id']}-{piece}"
            part["lines"] = lines[at : at + n]
            part.setdefault("register_id", "POS-01")
            part.setdefault("transaction_id", f"T-{e['event_id'][:8]}-{piece}")
            if e.get("event_type") in ("sale", "return"):
                part.setdefault("payment_method", rng.choice(["Cash", "Card", "Mobile"]))
                part.setdefault("client_type", rng.choice(["Regular", "Member", "Employee"]))
            yield part
            at += n
            piece += 1


def late(e, rng):
    t = datetime.datetime.fromisoformat(e["event_time"].replace("Z", "+00:00"))
    t -= datetime.timedelta(days=rng.randint(1, 20), seconds=rng.randint(0, 86_399))
    e = dict(e)
    e["event_time"] = t.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return e


def main():
    shape, n, canonical_path, legacy_path, out_path = sys.argv[1:6]
    n = int(n)
    rng = random.Random(int(sys.argv[6]) if len(sys.argv) > 6 else 7)
    written = lines = 0
    with open(canonical_path) as canonical, open(legacy_path) as legacy, open(
        out_path, "w"
    ) as out:

        def put(text, line_count):
            nonlocal written, lines
            out.write(text)
            out.write("\n")
            written += 1
            lines += line_count

        if shape == "basket":
            for text in canonical:
                if written >= n:
                    break
                try:
                    count = len(json.loads(text).get("lines", []))
                except (ValueError, AttributeError):
                    count = 0
                put(text.rstrip("\n"), count)
        elif shape == "legacy":
            for text in legacy:
                if written >= n:
                    break
                put(text.rstrip("\n"), 1)
        elif shape in ("small", "mixed"):
            recent = []
            for e in small_events(canonical, rng):
                if written >= n:
                    break
                if shape == "mixed":
                    r = rng.random()
                    if r < 0.05:
                        text = legacy.readline().rstrip("\n")
                        if text:
                            put(text, 1)
                            if written >= n:
                                break
                    elif r < 0.08 and recent:
                        put(rng.choice(recent), 0)
                    elif r < 0.09:
                        text = json.dumps(shuffled(e, rng))
                        put(text[: rng.randint(1, len(text) - 1)], 0)
                        continue
                    if rng.random() < 0.05:
                        e = late(e, rng)
                text = json.dumps(shuffled(e, rng))
                put(text, len(e["lines"]))
                if shape == "mixed":
                    recent.append(text)
                    del recent[:-1000]
        else:
            sys.exit(f"unknown shape {shape}: basket, legacy, small or mixed")
    print(json.dumps({"shape": shape, "records": written, "lines": lines}))


if __name__ == "__main__":
    main()

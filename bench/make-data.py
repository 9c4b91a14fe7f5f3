#!/usr/bin/env python3
"""Generates the backup benchmarks' data sets (deterministic).
Usage: make-data.py DIR [SCALE]   large incompressible files, compressible text files and many small files;
                                  SCALE 1.0 is about 2 GiB (backup-vs-restic.sh)
       make-data.py DIR s3        2,000 small files of 4-256 KiB (half text, half random) and 4 x 64 MiB random,
                                  about 530 MB (s3-vs-restic.sh)"""
import os
import random
import sys

root = sys.argv[1]
profile = sys.argv[2] if len(sys.argv) > 2 else "1.0"
rng = random.Random(23 if profile == "s3" else 42)
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10))) for _ in range(5000)]


def text(size):
    out = bytearray()
    while len(out) < size:
        out += b" ".join(rng.choice(words) for _ in range(12)) + b"\n"
    return bytes(out[:size])


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


if profile == "s3":
    for i in range(4):
        write(f"{root}/big/random-{i}.bin", rng.randbytes(64 << 20))
    for i in range(2000):
        size = rng.randint(4 << 10, 256 << 10)
        write(f"{root}/small/d{i // 100:02d}/f{i:04d}", text(size) if i % 2 == 0 else rng.randbytes(size))
    sys.exit(0)
scale = float(profile)
for i in range(2):  # 2 x 512 MiB random
    path = f"{root}/big/random-{i}.bin"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        for _ in range(int(512 * scale)):
            f.write(rng.randbytes(1 << 20))
for i in range(int(200 * scale)):  # 200 x 2.5 MiB text
    write(f"{root}/text/doc-{i:04d}.txt", text(5 << 19))
for i in range(int(10000 * scale)):  # 10,000 small files, 4-76 KiB, half text, half random
    size = rng.randint(4 << 10, 76 << 10)
    data = text(size) if i % 2 == 0 else rng.randbytes(size)
    write(f"{root}/small/d{i // 500:02d}/f{i:05d}", data)

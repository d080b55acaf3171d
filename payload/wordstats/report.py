import hashlib
import json
import re
import sqlite3
import sys
import zlib
from importlib import resources


def load_texts(paths):
    if not paths:
        yield "poem.txt (bundled)", resources.files("wordstats").joinpath("poem.txt").read_text()
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            yield path, handle.read()


def main(paths):
    db = sqlite3.connect(":memory:")
    db.execute("create table words (word text primary key, count integer)")
    summary = []
    for name, text in load_texts(paths):
        raw = text.encode()
        for word in re.findall(r"[a-z']+", text.lower()):
            db.execute(
                "insert into words values (?, 1) "
                "on conflict(word) do update set count = count + 1",
                (word,),
            )
        summary.append(
            {
                "file": name,
                "bytes": len(raw),
                "zlib_bytes": len(zlib.compress(raw, 9)),
                "sha256": hashlib.sha256(raw).hexdigest()[:16],
            }
        )
    top = db.execute("select word, count from words order by count desc, word limit 5").fetchall()
    print(json.dumps({"texts": summary, "top_words": top}, indent=2))
    print(f"sqlite {sqlite3.sqlite_version}, python {sys.version.split()[0]}")
    return 0

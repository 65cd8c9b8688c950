"""What the stream usage meter costs per stream of OpenAI's shape: every content chunk
carries `"usage": null` (as OpenAI sends once `include_usage` is on), then the usage-only
event and `[DONE]`; one upstream chunk per event, the usage event withheld.

    .venv/bin/python bench/stream_usage_cost.py [--chunks 50] [--repeat 20000]

Runs whichever `polyroute` is imported (the editable install: pure Python; PYTHONPATH set
to another tree measures that tree).
"""

from __future__ import annotations

import argparse
import timeit

from polyroute.usage import StreamUsage

CONTENT = (
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1795738825,'
    b'"model":"gpt-4o","system_fingerprint":"fp_x","choices":[{"index":0,"delta":'
    b'{"content":"word "},"logprobs":null,"finish_reason":null}],"usage":null}\n\n'
)
LAST = (
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1795738825,'
    b'"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":50,'
    b'"total_tokens":62}}\n\ndata: [DONE]\n\n'
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=20_000)
    args = parser.parse_args()
    chunks = [CONTENT] * args.chunks + [LAST]

    def one_stream() -> None:
        meter = StreamUsage(withhold=True)
        for chunk in chunks:
            meter.feed(chunk)
        meter.finish()
        assert meter.usage is not None

    seconds = timeit.timeit(one_stream, number=args.repeat)
    print(f"{seconds / args.repeat * 1e6:.1f} us per {len(chunks)}-chunk stream")


if __name__ == "__main__":
    main()

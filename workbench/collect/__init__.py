"""Collecting data: a capture proxy for the old pipeline's traffic, and synthetic examples.

Both put *candidates* into the workspace's examples store: flagged `needs-review` and tagged
`captured` or `synthetic`, until a person accepts, edits or rejects them (`review`).

    review.py         the review queue: list_candidates, count_candidates, accept, edit, reject
    launch.py         capture and synth as detached jobs (captures/<id>/, synths/<id>/)
    events.py         what the jobs report (events.jsonl), event_from_dict for readers
    capture.py        the capture job's engine: serve the proxy until cancelled
    proxy.py          the proxy itself (Anthropic Messages and OpenAI chat completions)
    http.py           the small HTTP/1.1 server it runs on; upstream.py, its client side
    pairs.py          a captured exchange as an OpenAI-chat record (no headers, no keys)
    sink.py           storing captured records off the request path
    synth.py          generating examples with Claude: prompts, cache, cost, dedupe
    dedupe.py         lookups of new examples among existing ones (exact and near)
    fake_upstream.py  a local stand-in for both APIs (tests, benchmark, offline demos)
    runner.py         the detached process; cli.py: `workbench capture|synth|review`
"""

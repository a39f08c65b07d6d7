"""schemathesis hooks of scripts/openapi-check.sh.

`copy_from` URLs are generated with random host names; the facade's SSRF
guard resolves each one before answering. This machine's DNS answers
quickly, but now and then a lookup waits for a lost packet longer than the
guard's 5-second limit, and the facade then answers 503 (as documented),
which schemathesis counts as a server error: a run would fail by chance.
So a generated `copy_from` keeps its scheme, path and shape but goes to
the local file server named by ALLIANCE_COPY_FROM_SOURCE (scheme, host and
port). The guard's verdicts on hostile URLs are covered by the unit tests
(src/copy_from/guard.rs) and tests/contract/create.rs; here the rest of the
create call is fuzzed, and the import then runs for real.
"""

import os
import re

import schemathesis

SOURCE = os.environ["ALLIANCE_COPY_FROM_SOURCE"].rstrip("/")
ORIGIN = re.compile(r"^https?://[^/]*")


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    # Every phase's cases (examples, coverage, fuzzing, stateful) pass here.
    body = case.body
    image = body.get("image") if isinstance(body, dict) else None
    if isinstance(image, dict) and isinstance(image.get("copy_from"), str):
        image["copy_from"] = ORIGIN.sub(SOURCE, image["copy_from"], count=1)

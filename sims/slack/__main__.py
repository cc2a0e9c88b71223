"""``python -m sims.slack [events_url]``: a browsable local workspace with two seeded users."""

from __future__ import annotations

import sys
import time

from . import SlackWorkspace

if __name__ == "__main__":
    ws = SlackWorkspace(signing_secret="local-signing-secret")
    ws.add_user("U_DEV", "dev", real_name="Dana Dev")
    ws.add_user("U_APPROVER", "approver", real_name="Alex Approver", is_admin=True)
    ws.add_channel("C_ML", "ml-platform")
    ws.events_url = sys.argv[1] if len(sys.argv) > 1 else None
    print(f"workspace at {ws.start(port=8765)}  (Web API: {ws.api_url}, delivering to {ws.events_url})")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        ws.stop()

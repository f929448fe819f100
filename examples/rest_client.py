"""Submit a job over jobpulse's REST routes and wait for it: ``python rest_client.py URL TOKEN``."""

import sys
import time

import httpx

url, token = sys.argv[1], sys.argv[2]
with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
    response = client.post("/api/v1/jobs", json={"type": "noop", "payload": {"note": "hi"}})
    response.raise_for_status()  # 202 Accepted; errors are {"error": {"code", "message", "field"}}
    location = response.headers["Location"]
    while (job := client.get(location).json())["status"] in ("PENDING", "PROCESSING"):
        time.sleep(0.2)
    print(job["id"], job["status"], job["result"])

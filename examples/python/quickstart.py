"""Sign in as the demo user, write a row and read it back with orgbase's Python SDK."""

import os

from orgbase.client import Orgbase

with Orgbase(os.environ.get("API_URL", "http://127.0.0.1:8000")) as ob:
    ob.auth.sign_in("demo@orgbase.local", "demo-password-2026")
    demo_org = ob.orgs.mine()[0]
    ob.auth.switch_org(demo_org["id"])  # data calls act in the token's org
    ob.db.table("items").insert({"title": "from Python", "status": "open"}).execute()
    rows = ob.db.table("items").select("id,title").eq("title", "from Python").execute()
    print(rows.data)
    ob.auth.sign_out()

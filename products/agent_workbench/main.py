from __future__ import annotations

from products.agent_workbench.app import create_app

app = create_app()

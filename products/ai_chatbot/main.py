from __future__ import annotations

from products.ai_chatbot.app import create_app

app = create_app()

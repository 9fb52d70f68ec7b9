"""The desk: agent presence, automatic assignment, the queue, and what the periodic sweep
keeps true (no chat with an agent who is gone, no gone customer in the queue)."""

"""The chat tools, transport-neutral (DESIGN §8); filled in by the chat-tools work."""

//! The gateway's faces for Claude Code, Codex and Gemini CLI, over real HTTP against swarm's fake model.

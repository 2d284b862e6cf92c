"""HTTP routers: runs, steps, and operations (health, readiness, metrics)."""

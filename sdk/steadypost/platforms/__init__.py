"""Platform adapters: each speaks one platform's upload protocol as flows (no I/O)."""

"""Every table module, imported once so that SQLModel.metadata knows the whole schema.

Alembic's env.py and the test fixtures import this; code that uses one area's tables imports
that module directly.
"""

import storage.models
import storage.oncall
import storage.service_state
import storage.statuspage  # noqa: F401

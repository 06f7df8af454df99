"""Call-center KPIs over rollups (and raw calls where rollups can't answer)."""

from callpulse.analytics.errors import QueryError
from callpulse.analytics.listing import BadCursor
from callpulse.analytics.models import Filters
from callpulse.analytics.service import Analytics

__all__ = ["Analytics", "BadCursor", "Filters", "QueryError"]

"""The role activity classes of a test worker, built over whatever ports the test holds (real or fakes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from activities.amendments import ContractContextActivities
from activities.billing import BillingActivities
from activities.clm import ClmActivities
from activities.config import ConfigActivities
from activities.crm import CrmActivities
from activities.erp import ErpActivities
from settings import Settings


def role_activities(settings: Settings, *, crm: Any, clm: Any, billing: Any, erp: Any,
                    notifications: Any = None) -> list[Callable[..., Any]]:
    """The configuration loader and the CRM, CLM, billing and ERP activities (and the two joined reads of the
    amendments flow), as ``worker.activities_for`` builds them."""
    groups: list[Any] = [
        ConfigActivities(settings=settings),
        CrmActivities(crm=crm, notifications=notifications),
        ClmActivities(clm=clm),
        BillingActivities(billing=billing),
        ErpActivities(erp=erp, billing=billing),
        ContractContextActivities(crm=crm, clm=clm, billing=billing,
                                  legal_entities=[e.code for e in settings.legal_entities]),
    ]
    return [fn for group in groups for fn in group.all()]

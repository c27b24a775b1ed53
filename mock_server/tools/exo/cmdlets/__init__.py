"""The cmdlets, one module per family; importing this package registers them all in `binding.CMDLETS`."""

from m365_mock.tools.exo.cmdlets import access_policies, rbac, recipients, session

__all__ = ["access_policies", "rbac", "recipients", "session"]

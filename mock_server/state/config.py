"""Tenant files in and out: the names of `mock_server.state.tenantfile`, kept here while callers move over."""

from mock_server.state.tenantfile import *  # noqa: F403
from mock_server.state.tenantfile import __all__  # noqa: F401

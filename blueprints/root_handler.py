"""RootHandler: ``<prefix>/`` lists the apps the user may use, or redirects when there is
exactly one."""
from __future__ import annotations

from flask import Response, redirect
from werkzeug.wrappers import Response as BaseResponse

from ..app.apps import pages
from .auth.users import AuthRequestHandler
from .views import BokehView


class RootHandler(AuthRequestHandler, BokehView):
    def get(self) -> BaseResponse:
        settings = self.core.settings
        prefix = self.route_options["prefix"]
        provider = self.core.auth_provider
        user = self.current_user
        keys = [key for key in self.core.applications if not provider.enabled or provider.authorize(user, key)]
        if len(keys) == 1 and not settings.disable_index_redirect:
            return redirect(prefix + keys[0])
        html = pages.index_page(prefix, keys, settings.index)
        return Response(html, content_type="text/html; charset=utf-8")

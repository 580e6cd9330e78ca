"""oidc-provider-mock on a loopback port, as the tests run it: ``python mock_provider.py PORT
TOKEN_MAX_AGE REFRESH(1|0)``. The provider speaks plain HTTP, which Authlib's server side
refuses unless told otherwise (the package's own command does the same)."""
import os
import sys
from datetime import timedelta

os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"

import oidc_provider_mock
import werkzeug.serving

port, max_age, refresh = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
app = oidc_provider_mock.app(issue_refresh_token=refresh, access_token_max_age=timedelta(seconds=max_age))
werkzeug.serving.run_simple("127.0.0.1", port, app, threaded=True)

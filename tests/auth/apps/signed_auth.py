"""Test auth module in the bokeh serve style: get_user_async, Tornado signed cookies
(needs --cookie-secret), a LoginHandler that writes plain text, a LogoutHandler."""
from tornado.web import RequestHandler


async def get_user_async(request_handler):
    user = request_handler.get_signed_cookie("signed_user")
    return user.decode() if user else None


login_url = "/signin"
logout_url = "/signout"


class LoginHandler(RequestHandler):
    def get(self):
        self.write("sign in with POST name=...")

    def post(self):
        self.set_signed_cookie("signed_user", self.get_argument("name"))
        self.redirect(self.get_argument("next", "/"))


class LogoutHandler(RequestHandler):
    def get(self):
        self.clear_cookie("signed_user")
        self.write("signed out")

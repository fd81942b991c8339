"""Signing in and out: ``/signin`` (and ``/code``, ``/enrol``), ``/signout``, ``/account``, ``/invite/<token>``.

Sign-in is a login and password (vault/identity/sign_in.py), then, for a
principal with two-step sign-in on, a TOTP code; clinic, landlord,
compliance and admin accounts without it enrol first (QR code and the
secret as text), and their first code confirms the enrolment. Each step
that succeeds sets a new cookie token, so a cookie seen before the second
factor is worth nothing after it.

Failed sign-ins are counted per client address and per login (a blind key,
never the login: api/limits.py); while either is over its limit the form is
refused with a 429 page before the password is checked. A wrong login and a
wrong password get the same message in the same time.
"""

from flask import Blueprint, current_app, redirect, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from api.context import THROTTLE, current_vault
from api.web.pages import done, render
from api.web.session import (
    check_csrf,
    check_origin,
    clear_cookie,
    cookie_token,
    current_session,
    page,
    set_cookie,
)
from vault.core.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from vault.identity import invitations, logins, sign_in, totp, web_sessions
from vault.identity.passwords import MAX_LENGTH as MAX_PASSWORD_LENGTH

bp = Blueprint("auth", __name__)

MAX_LOGIN_FIELD = 200


def _next_url() -> str:
    """Where to go after signing in: a path on this site only (never another host)."""
    target = request.args.get("next") or request.form.get("next") or ""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target and len(target) < 2000:
        return target
    return url_for("web.home")


def _throttle():
    return current_app.extensions.get(THROTTLE)


@bp.route("/signin", methods=["GET", "POST"], endpoint="sign_in")
def sign_in_page() -> BaseResponse | tuple[str, int]:
    if request.method == "GET":
        return render("auth/sign_in.html", title="Sign in", next=_next_url(), errors={}, login="")
    check_origin()
    login = request.form.get("login", "")[:MAX_LOGIN_FIELD]
    password = request.form.get("password", "")[: MAX_PASSWORD_LENGTH + 1]
    errors = {}
    if not login.strip():
        errors["login"] = "Enter your login."
    if not password:
        errors["password"] = "Enter your password."
    if errors:
        return render("auth/sign_in.html", title="Sign in", next=_next_url(), errors=errors, login=login, status=400)
    vault = current_vault()
    throttle = _throttle()
    rate_key = logins.rate_key(vault.keys, login)
    if throttle is not None:
        throttle.check_sign_in(rate_key)
    try:
        with vault.transaction() as session:
            started = sign_in.sign_in(
                session,
                vault.keys,
                login=login,
                password=password,
                now=vault.now(),
                policy=vault.settings.web_sessions,
            )
    except Unauthenticated as error:
        if throttle is not None:
            throttle.failed_sign_in_attempt(rate_key)
        return render(
            "auth/sign_in.html",
            title="Sign in",
            next=_next_url(),
            errors={"form": error.detail},
            login=login,
            status=401,
        )
    if started.second_factor == sign_in.DONE:
        target = _next_url()
    elif started.second_factor == sign_in.CODE:
        target = url_for("web.auth.code", next=_next_url())
    else:
        target = url_for("web.auth.enrol", next=_next_url())
    return set_cookie(redirect(target, code=303), started.token)


def _half_signed_in() -> web_sessions.WebSessionInfo:
    info = current_session(require_second_factor=False)
    if info.second_factor_done:
        raise Conflict("You are already signed in.")
    return info


@bp.route("/signin/code", methods=["GET", "POST"])
def code() -> BaseResponse | tuple[str, int]:
    try:
        info = _half_signed_in()
    except (Unauthenticated, Conflict):
        return redirect(url_for("web.home"))
    if request.method == "GET":
        return render("auth/code.html", title="Enter your code", next=_next_url(), errors={})
    check_csrf()
    vault = current_vault()
    with vault.transaction() as session:
        result = sign_in.give_code(
            session,
            vault.keys,
            cookie_token() or "",
            request.form.get("code", ""),
            now=vault.now(),
            policy=vault.settings.web_sessions,
        )
    if result.session_ended:
        return clear_cookie(redirect(url_for("web.auth.sign_in", notice="session-ended"), code=303))
    if not result.accepted or result.token is None:
        throttle = _throttle()
        if throttle is not None:
            throttle.failed_sign_in_attempt(f"session:{info.id}")
        return render(
            "auth/code.html",
            title="Enter your code",
            next=_next_url(),
            errors={"code": "That code is not right. Enter the 6-digit code your app shows now."},
            status=401,
        )
    target = _next_url()
    if request.form.get("enrolling"):
        target = url_for("web.home", notice="enrolled")
    return set_cookie(redirect(target, code=303), result.token)


@bp.route("/signin/enrol", methods=["GET"])
def enrol() -> BaseResponse | tuple[str, int]:
    """Start two-step sign-in: a new secret each time the page loads (the previous one is replaced)."""
    try:
        info = _half_signed_in()
    except (Unauthenticated, Conflict):
        return redirect(url_for("web.home"))
    vault = current_vault()
    with vault.transaction() as session:
        enrolment = totp.enrol(session, vault.keys, info.principal_id)
    return render(
        "auth/enrol.html",
        title="Set up two-step sign-in",
        next=_next_url(),
        enrolment=enrolment,
        errors={},
    )


@bp.route("/signout", methods=["POST"])
def sign_out() -> BaseResponse:
    check_origin()
    token = cookie_token()
    if token is not None:
        try:
            check_csrf()
        except Unauthenticated:
            pass  # an ended session: nothing to sign out of, clear the cookie anyway
        else:
            vault = current_vault()
            with vault.transaction() as session:
                web_sessions.sign_out(session, token, now=vault.now())
    return clear_cookie(redirect(url_for("web.auth.sign_in", notice="signed-out"), code=303))


@bp.route("/account", methods=["GET"])
@page()
def account() -> tuple[str, int]:
    info = current_session()
    vault = current_vault()
    with vault.read_transaction() as session:
        from vault.storage.models import Principal

        row = session.get(Principal, info.principal_id)
        login = logins.open_login(vault.keys, row) if row is not None else None
        two_step = row is not None and totp.is_enabled(row)
    return render(
        "auth/account.html",
        title="Your account",
        login=login,
        two_step=two_step,
        two_step_required=totp.required_for(info.role),
        session_info=info,
    )


@bp.route("/account/two-step", methods=["GET", "POST"])
@page()
def two_step() -> BaseResponse | tuple[str, int]:
    """A resident turns on two-step sign-in (optional for residents; the other roles have it already)."""
    info = current_session()
    vault = current_vault()
    errors = {}
    if request.method == "POST":
        with vault.transaction() as session:
            accepted = totp.confirm_enrolment(
                session, vault.keys, info.principal_id, request.form.get("code", ""), now=vault.now()
            )
        if accepted:
            return done("web.auth.account", "enrolled")
        errors["code"] = "That code is not right. Add the new key below to your app and enter the code it shows."
    with vault.transaction() as session:
        enrolment = totp.enrol(session, vault.keys, info.principal_id)  # Conflict (a page) when it is on already
    return render(
        "auth/enrol.html",
        title="Set up two-step sign-in",
        next="",
        enrolment=enrolment,
        errors=errors,
        action=url_for("web.auth.two_step"),
        status=400 if errors else 200,
    )


@bp.route("/account/signout-everywhere", methods=["POST"])
@page()
def sign_out_everywhere() -> BaseResponse:
    info = current_session()
    vault = current_vault()
    with vault.transaction() as session:
        web_sessions.sign_out_everywhere(session, info.principal_id, now=vault.now())
    return clear_cookie(redirect(url_for("web.auth.sign_in", notice="signed-out-everywhere"), code=303))


@bp.route("/invite/<token>", methods=["GET", "POST"])
def invite(token: str) -> BaseResponse | tuple[str, int]:
    """An invitation link: the person sets their own password (a wrong or used link: one message, 404)."""
    vault = current_vault()
    with vault.read_transaction() as session:
        _, login = invitations.peek(session, vault.keys, token, now=vault.now())
    if request.method == "GET":
        return render("auth/invite.html", title="Set your password", login=login, errors={})
    check_origin()
    password = request.form.get("password", "")[: MAX_PASSWORD_LENGTH + 1]
    again = request.form.get("password_again", "")[: MAX_PASSWORD_LENGTH + 1]
    if password != again:
        errors = {"password_again": "The two passwords are not the same."}
        return render("auth/invite.html", title="Set your password", login=login, errors=errors, status=400)
    try:
        with vault.transaction() as session:
            invitations.accept(session, vault.keys, token, password, now=vault.now())
    except InvalidInput as error:
        errors = {"password": error.detail}
        return render("auth/invite.html", title="Set your password", login=login, errors=errors, status=400)
    except NotFound:
        raise
    return done("web.auth.sign_in", "password-set")

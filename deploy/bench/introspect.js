// auth_request handler for server (c): RFC 7662 introspection of the bearer token.
// 204 lets the request through, 401 rejects it (auth_request passes 401 on to the client).
function check(r) {
    var m = /^Bearer\s+(\S+)$/i.exec(r.headersIn.Authorization || '');
    if (!m) {
        // No token: answer here, so no introspection call and no cache entry under an empty key.
        r.return(401);
        return;
    }
    // POST with the form body set here (njs 0.7.9 passes both on to proxy_pass); the token goes
    // percent-encoded in the body, never into the URL. The answer is cached by /_introspect.
    var body = 'token=' + encodeURIComponent(m[1]) + '&token_type_hint=access_token';
    r.subrequest('/_introspect', { method: 'POST', body: body }, function (reply) {
        if (reply.status != 200) {
            r.error('introspection answered ' + reply.status);
            r.return(401);
            return;
        }
        var active = false;
        try {
            active = JSON.parse(reply.responseText).active === true;
        } catch (e) {
            r.error('introspection answer is not JSON: ' + e);
        }
        r.return(active ? 204 : 401);
    });
}

export default { check };

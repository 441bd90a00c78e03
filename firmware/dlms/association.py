"""The application association of one transport connection, and the ONE place where every
error becomes a response (DLMS UA Green Book: ACSE services, xDLMS services, "Protocol for
application association establishment and release" and the xDLMS error handling rules).

    request APDU (bytes in) --handle()--> response APDU (bytes out, into the caller's buffer)

State machine (per HDLC connection or TCP connection):

    IDLE --AARQ accepted--> ASSOCIATED --RLRQ--> IDLE
    IDLE --AARQ rejected--> IDLE (AARE with the reason)
    any  --transport lost (link.connection_id changed / socket closed)--> IDLE (reset())

* AARQ: parsed by ``acse``; the client SAP selects the policy (mechanism, secret, context);
  ``acse.evaluate`` decides, ``acse.respond`` writes the AARE.
* RLRQ: RLRE (with an InitiateResponse when the RLRQ carried an InitiateRequest).
* GET (normal, next, with-list): looked up in the logical device with the client's rights;
  values stream through ``xdlms.Pump`` into GET-Response-Normal or, when longer than the
  client's max PDU (or our buffer), GET-Response-With-Datablock continued by GET-Request-Next.
  A new request in the middle of a block transfer abandons the transfer.
* Anything not understood: ExceptionResponse (service-unknown) or, for a service outside
  the negotiated conformance, ExceptionResponse (service-not-allowed, service-not-supported).
  An xDLMS request without an association: ExceptionResponse (service-not-allowed,
  operation-not-possible).

RAM: one decoded-request object, one Pump (scratch buffer), a few ints.
"""

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


from dlms import acse
from dlms import axdr
from dlms import security
from dlms import xdlms

AARQ = const(0x60)
AARE = const(0x61)
RLRQ = const(0x62)
RLRE = const(0x63)

IDLE = const(0)
PENDING = const(1)  # HLS: AARE sent with StoC, waiting for reply_to_HLS_authentication
ASSOCIATED = const(2)

_CURRENT_ASSOCIATION = b"\x00\x00\x28\x00\x00\xff"  # 0.0.40.0.0.255

_DATABLOCK_HEADER = const(12)  # C4 02 invoke last(1) block(4) choice(1) length(<=3)
_LONG_SET_MAX = const(2048)  # largest value accepted through SET datablocks


def _len_size(n):
    return 1 if n < 0x80 else (2 if n < 0x100 else 3)


class Association:
    def __init__(self, device):
        self.device = device
        self.req = xdlms.Request()
        self.pump = xdlms.Pump()
        self._ui = bytearray(32)  # an InitiateResponse for the RLRE
        self._set_buf = None  # long SET reassembly, allocated on first use
        self._set_count = 0
        self._resp = None  # plain response of a ciphered association, allocated on first use
        self.reset()

    def reset(self):
        """Back to IDLE: the transport was lost, or the association released."""
        self.state = IDLE
        self.client = 0
        self.conformance = 0
        self.client_max_pdu = 0
        self.sec = None  # security.Context of a ciphered association
        self.stoc = None  # HLS: the challenge the meter sent
        self.ctos = None  # HLS: the client's challenge
        self._abort_block()

    def _abort_block(self):
        self.block_no = 0  # 0: no GET / ACTION response in blocks in progress
        self.block_invoke = 0
        self.block_tag = xdlms.GET_RESPONSE  # which service the blocks belong to
        self.pump.reset()
        self._set_block = 0  # 0: no SET datablocks / ACTION pblocks coming in
        self._set_len = 0
        self._long_service = 0

    @property
    def associated(self):
        return self.state == ASSOCIATED

    # ----------------------------------------------------------------------------------
    def handle(self, client, buf, n, out):
        """Answer the request APDU buf[0:n] from client SAP ``client``.

        Writes the response into ``out`` (a memoryview) and returns its length; 0 = no
        response. Never raises: whatever the input, the association stays consistent.
        ``buf`` must be writable: ciphered requests are decrypted in place.
        """
        if n <= 0:
            return 0
        w = axdr.Writer(out)
        try:
            tag = buf[0]
            if tag == AARQ:
                self._aarq(client, buf, n, w)
            elif tag == RLRQ:
                self._rlrq(client, buf, n, w)
            elif self.state == IDLE or client != self.client:
                self._abort_block()
                xdlms.encode_exception(
                    w, xdlms.STATE_SERVICE_NOT_ALLOWED, xdlms.SERVICE_OPERATION_NOT_POSSIBLE)
            elif self.sec is not None:
                return self._ciphered(buf, n, out, w)
            else:
                self._dispatch(buf, n, out, w)
        except xdlms.RequestError:
            self._abort_block()
            w.reset()
            xdlms.encode_exception(w, xdlms.STATE_SERVICE_UNKNOWN, xdlms.SERVICE_OTHER_REASON)
        except axdr.BufferFull:
            self._abort_block()
            w.reset()
            xdlms.encode_exception(w, xdlms.STATE_SERVICE_NOT_ALLOWED, xdlms.SERVICE_PDU_TOO_LONG)
        return w.pos

    def _dispatch(self, buf, n, out, w):
        """A plain xDLMS request of the established association."""
        tag = buf[0]
        if tag == xdlms.GET_REQUEST:
            if not self.conformance & acse.CONF_GET:
                self._not_allowed(w)
            else:
                self._get(buf, n, out, w)
        elif tag == xdlms.SET_REQUEST:
            if not self.conformance & acse.CONF_SET:
                self._not_allowed(w)
            else:
                self._set(buf, n, w)
        elif tag == xdlms.ACTION_REQUEST:
            if not self.conformance & acse.CONF_ACTION:
                self._not_allowed(w)
            else:
                self._action(buf, n, out, w)
        else:
            self._abort_block()
            xdlms.encode_exception(w, xdlms.STATE_SERVICE_UNKNOWN, xdlms.SERVICE_NOT_SUPPORTED)

    def _not_allowed(self, w):
        self._abort_block()
        xdlms.encode_exception(w, xdlms.STATE_SERVICE_NOT_ALLOWED, xdlms.SERVICE_NOT_SUPPORTED)

    # ---------------------------------------------------------------- ciphered context
    def _ciphered(self, buf, n, out, w):
        """Unprotect the request in place, serve it, protect the answer the same way.

        Errors are answered in plain (the request could not be trusted), with the
        ExceptionResponse the Green Book names: deciphering-error, invocation-counter-error.
        """
        ctx = self.sec
        sec = self.device.security
        if sec is not None and getattr(ctx, "epoch", 0) != sec.epoch:
            # an association on keys that have since been replaced: it is over
            self.reset()
            xdlms.encode_exception(
                w, xdlms.STATE_SERVICE_NOT_ALLOWED, xdlms.SERVICE_DECIPHERING_ERROR)
            return w.pos
        k = security.unwrap(ctx, buf, 0, n)
        if k == security.ERR_UNKNOWN_TAG:
            # plain APDU: only the HLS pass 3 may come unprotected, and only while pending
            if self.state != PENDING:
                self._abort_block()
                xdlms.encode_exception(
                    w, xdlms.STATE_SERVICE_NOT_ALLOWED, xdlms.SERVICE_DECIPHERING_ERROR)
                return w.pos
            self._hls_pass3(buf, n, w, False)
            return w.pos
        if k < 0:
            self._abort_block()
            se = (xdlms.SERVICE_INVOCATION_COUNTER_ERROR if k == security.ERR_REPLAY
                  else xdlms.SERVICE_DECIPHERING_ERROR)
            xdlms.encode_exception(w, xdlms.STATE_SERVICE_NOT_ALLOWED, se)
            if self.state == PENDING:
                self._hls_failed()
            return w.pos
        start = ctx.rx.start
        plain = memoryview(buf)[start : start + k]
        limit = self._limit(out) - security.OVERHEAD
        shared = getattr(sec, "resp", None)
        if shared is not None and len(shared) >= limit:
            buf_resp = shared  # one buffer for all ciphered associations
        else:
            if self._resp is None or len(self._resp) < limit:
                self._resp = bytearray(limit)
            buf_resp = self._resp
        resp = memoryview(buf_resp)[:limit]
        rw = axdr.Writer(resp)
        try:
            if self.state == PENDING:
                self._hls_pass3(plain, k, rw, True)
            else:
                self._dispatch(plain, k, resp, rw)
        except xdlms.RequestError:
            self._abort_block()
            rw.reset()
            xdlms.encode_exception(rw, xdlms.STATE_SERVICE_UNKNOWN, xdlms.SERVICE_OTHER_REASON)
        except axdr.BufferFull:
            self._abort_block()
            rw.reset()
            xdlms.encode_exception(rw, xdlms.STATE_SERVICE_NOT_ALLOWED,
                                   xdlms.SERVICE_PDU_TOO_LONG)
        if rw.pos == 0:
            return 0
        m = security.wrap(ctx, ctx.rx, resp, 0, rw.pos, out)
        if m < 0:  # the meter's counter is exhausted, or no room: say so in plain
            w.reset()
            xdlms.encode_exception(w, xdlms.STATE_SERVICE_NOT_ALLOWED,
                                   xdlms.SERVICE_PDU_TOO_LONG if m == security.ERR_TOO_LONG
                                   else xdlms.SERVICE_OTHER_REASON)
            return w.pos
        return m

    def _hls_pass3(self, buf, n, w, ciphered):
        """HLS-GMAC pass 3: reply_to_HLS_authentication(f(StoC)) on 0.0.40.0.0.255 is the
        only request a pending association accepts. Pass 4 returns f(CtoS)."""
        req = self.req
        ok = False
        if buf[0] == xdlms.ACTION_REQUEST:
            xdlms.decode_action(buf, n, req)
            ref = req.refs[0]
            ok = (req.kind == xdlms.ACTION_NORMAL and ref.class_id == 15 and ref.attr == 1
                  and ref.obis == _CURRENT_ASSOCIATION)
        if not ok:
            xdlms.encode_exception(
                w, xdlms.STATE_SERVICE_NOT_ALLOWED, xdlms.SERVICE_OPERATION_NOT_POSSIBLE)
            return
        param = req.values[0]
        r = security.ERR_MALFORMED
        if param is not None and param[0] == axdr.OCTET_STRING:
            f = param[1]
            r = security.hls_verify(self.sec, self.stoc, f, 0, len(f), guard_ic=not ciphered)
        w.u8(xdlms.ACTION_RESPONSE)
        w.u8(xdlms.ACTION_NORMAL)
        w.u8(req.invoke)
        if r != security.OK:
            w.u8(xdlms.DAR_OTHER_REASON)  # authentication failed: no data, association closed
            w.u8(0)
            self._hls_failed()
            return
        fctos = bytearray(security.HLS_LEN)
        if security.hls_response(self.sec, self.ctos, fctos, 0) < 0:
            w.u8(xdlms.DAR_OTHER_REASON)
            w.u8(0)
            self._hls_failed()
            return
        self.state = ASSOCIATED
        w.u8(0)  # success
        w.u8(1)  # return-parameters present
        w.u8(0)  # data
        w.octet_string(fctos)

    def _hls_failed(self):
        sec = self.device.security
        if sec is not None:
            sec.event("hls-failure", self.client)
        keep = self.sec
        self.reset()
        self.sec = None
        del keep

    # ---------------------------------------------------------------- ACSE
    def _aarq(self, client, buf, n, w):
        self.reset()  # a new AARQ replaces whatever association this connection had
        policy = self.device.policies.get(client)
        try:
            aarq = acse.parse_aarq(buf, 0, n)
        except axdr.DecodeError:
            aarq = None
        if aarq is None or policy is None:
            # Unparsable AARQ, or a client SAP this meter does not know: refused, and the
            # AARE is built on the public policy (its context name and max PDU).
            decision = acse.Decision()
            decision.result = acse.RESULT_REJECTED_PERMANENT
            decision.diagnostic = acse.DIAG_NO_REASON
            decision.error = (acse.SERVICE_ERROR_INITIATE, acse.INITIATE_OTHER)
            acse.respond(w, aarq, decision, self.device.policies[self.device.fallback_sap])
            return
        ciphered = policy.app_context == acse.CTX_LN_CIPHERED
        sec = self.device.security
        ctx = None
        initiate = None
        ui = aarq.user_info
        if ciphered and sec is not None and sec.ok and aarq.calling_ap_title is not None \
                and len(aarq.calling_ap_title) == 8:
            ctx = sec.context(aarq.calling_ap_title)
            if ui is not None and len(ui) and ui[0] == 0x21:  # glo-initiate-request
                plain = bytearray(len(ui))
                k = security.unwrap_initiate(ctx, ui, 0, len(ui), plain)
                if k >= 0:
                    initiate = self._parse_initiate(plain, k)
                    if initiate is not None and not ctx.set_dedicated_key(
                            initiate.dedicated_key):
                        initiate = None
                else:
                    ctx = None  # undecipherable: answer in plain
        elif not ciphered and ui is not None:
            initiate = self._parse_initiate(ui, len(ui))
        decision = acse.evaluate(aarq, policy, initiate)
        if decision.result == 0 and ciphered and (sec is None or not sec.ok or ctx is None):
            decision.result = acse.RESULT_REJECTED_PERMANENT  # no working suite 0
            decision.diagnostic = acse.DIAG_NO_REASON
            decision.auth_pending = False
        stoc = None
        if decision.result == 0 and decision.auth_pending:
            if policy.mechanism != acse.MECH_HLS_GMAC or ctx is None:
                decision.result = acse.RESULT_REJECTED_PERMANENT
                decision.diagnostic = acse.DIAG_MECHANISM_NOT_RECOGNISED
                decision.auth_pending = False
            else:
                stoc = sec.random(16)
        user_info = None
        title = None
        if ctx is not None and initiate is not None:
            uw = axdr.Writer(self._ui)
            acse.encode_user_info(uw, decision, policy)
            cipher = bytearray(uw.pos + security.OVERHEAD)
            m = security.wrap_initiate_response(ctx, self._ui, 0, uw.pos, cipher)
            if m > 0:
                user_info = memoryview(cipher)[:m]
                title = sec.server_title
        acse.respond(w, aarq, decision, policy, stoc=stoc, user_info=user_info,
                     responding_ap_title=title)
        if decision.result != 0:
            if decision.diagnostic == acse.DIAG_AUTHENTICATION_FAILURE:
                self.device.event("auth-failure", client)
            return
        self.client = client
        self.conformance = decision.conformance
        self.client_max_pdu = decision.client_max_pdu or 0xFFFF
        if ctx is not None:
            self.sec = ctx
            ctx.require = sec.required_sc()
            sec.setup.client_title = bytes(aarq.calling_ap_title)
        if decision.auth_pending:
            self.state = PENDING
            self.stoc = stoc
            self.ctos = bytes(aarq.auth_value)
        else:
            self.state = ASSOCIATED

    @staticmethod
    def _parse_initiate(buf, n):
        try:
            return acse.parse_initiate_request(buf, 0, n)
        except axdr.DecodeError:
            return None

    def _rlrq(self, client, buf, n, w):
        try:
            _reason, user_info = acse.parse_rlrq(buf, 0, n)
        except axdr.DecodeError:
            user_info = None
        ui = None
        if user_info is not None and self.associated and client == self.client:
            ctx = self.sec
            plain = user_info
            k = len(user_info)
            if ctx is not None:
                plain = bytearray(len(user_info))
                k = security.unwrap_initiate(ctx, user_info, 0, len(user_info), plain)
            if k >= 0 and self._parse_initiate(plain, k) is not None:
                uw = axdr.Writer(self._ui)
                acse.encode_initiate_response(uw, self.conformance, self.device.max_pdu)
                ui = memoryview(self._ui)[: uw.pos]
                if ctx is not None:
                    cipher = bytearray(uw.pos + security.OVERHEAD)
                    m = security.wrap_initiate_response(ctx, self._ui, 0, uw.pos, cipher)
                    ui = memoryview(cipher)[:m] if m > 0 else None
        self.reset()
        acse.encode_rlre(w, 0, ui)  # reason: normal

    # ---------------------------------------------------------------- SET
    def _write(self, ref, value):
        """Write one attribute with the client's rights; returns a Data-Access-Result."""
        found = self.device.lookup(self.client, ref.obis)
        if found is None:
            return xdlms.DAR_OBJECT_UNDEFINED
        obj, rights = found
        if ref.class_id != obj.CLASS_ID:
            return xdlms.DAR_OBJECT_CLASS_INCONSISTENT
        a = ref.attr
        if a < 1 or a > len(obj.ATTRS):
            return xdlms.DAR_OBJECT_UNAVAILABLE
        if not rights[0][a - 1] & 2:
            return xdlms.DAR_READ_WRITE_DENIED
        try:
            return obj.set(a, value, self, ref)
        except (TypeError, ValueError, IndexError):
            return xdlms.DAR_TYPE_UNMATCHED
        except Exception:
            return xdlms.DAR_HARDWARE_FAULT

    def _set(self, buf, n, w):
        req = self.req
        xdlms.decode_set(buf, n, req)
        kind = req.kind
        if kind != xdlms.SET_DATABLOCK:
            self._abort_block()  # any new request abandons a transfer in progress
        w.u8(xdlms.SET_RESPONSE)
        if kind == xdlms.SET_NORMAL:
            w.u8(xdlms.SET_NORMAL)
            w.u8(req.invoke)
            w.u8(self._write(req.refs[0], req.values[0]))
        elif kind == xdlms.SET_WITH_LIST:
            w.u8(xdlms.SET_RESP_WITH_LIST)
            w.u8(req.invoke)
            w.length(req.count)
            for i in range(req.count):
                w.u8(self._write(req.refs[i], req.values[i]))
        else:
            self._set_block_step(buf, req, w)

    def _collect(self, buf, req, first, service):
        """Append one incoming DataBlock-SA (SET datablock or ACTION pblock) to the
        reassembly buffer. Returns 0, or the Data-Access-Result that ends the transfer:
        sequence errors abandon it, an overflow aborts it."""
        if first:
            if req.block != 1:
                return xdlms.DAR_DATA_BLOCK_NUMBER_INVALID
            self._long_service = service
            self._set_count = req.count  # 0: one value; n: a SEQUENCE OF n values
            self._set_len = 0
            if self._set_buf is None:
                self._set_buf = bytearray(_LONG_SET_MAX)
        else:
            if self._set_block == 0 or self._long_service != service:
                return xdlms.DAR_NO_LONG_SET_IN_PROGRESS  # 18 (16 for ACTION, see caller)
            if req.block != self._set_block + 1:
                self._abort_block()
                return xdlms.DAR_DATA_BLOCK_NUMBER_INVALID
        n = req.raw_end - req.raw_start
        if self._set_len + n > len(self._set_buf):
            self._abort_block()
            return xdlms.DAR_LONG_SET_ABORTED
        dst = self._set_buf
        base = self._set_len
        for i in range(n):
            dst[base + i] = buf[req.raw_start + i]
        self._set_len = base + n
        self._set_block = req.block
        return 0

    def _collected_values(self, count):
        """Decode the reassembled data: one value (count 0) or a SEQUENCE OF count values."""
        r = axdr.Reader(self._set_buf, 0, self._set_len)
        values = []
        if count == 0:
            values.append(r.data())
        else:
            if r.length() != count:
                raise axdr.DecodeError()
            for _ in range(count):
                values.append(r.data())
        if r.remaining():
            raise axdr.DecodeError()
        return values

    def _set_block_step(self, buf, req, w):
        """SET with datablocks: collect raw-data, then decode and write the value(s)."""
        first = req.kind != xdlms.SET_DATABLOCK
        if first:
            req.count = req.count if req.kind == xdlms.SET_LIST_FIRST_DATABLOCK else 0
        dar = self._collect(buf, req, first, xdlms.SET_REQUEST)
        if dar:
            return self._set_block_error(req, dar, w)
        if not req.last:
            w.u8(xdlms.SET_RESP_DATABLOCK)
            w.u8(req.invoke)
            w.u32(req.block)
            return None
        count = self._set_count
        try:
            values = self._collected_values(count)
            results = [self._write(self.req.refs[i], values[i]) for i in range(len(values))]
        except axdr.DecodeError:
            results = [xdlms.DAR_TYPE_UNMATCHED] * (count or 1)
        block = req.block
        self._abort_block()
        if count == 0:
            w.u8(xdlms.SET_RESP_LAST_DATABLOCK)
            w.u8(req.invoke)
            w.u8(results[0])
        else:
            w.u8(xdlms.SET_RESP_LAST_DATABLOCK_LIST)
            w.u8(req.invoke)
            w.length(count)
            for dar in results:
                w.u8(dar)
        w.u32(block)
        return None

    def _set_block_error(self, req, dar, w):
        """Set-Response-Last-Datablock carrying the failure: the transfer is over."""
        w.u8(xdlms.SET_RESP_LAST_DATABLOCK)
        w.u8(req.invoke)
        w.u8(dar)
        w.u32(req.block)

    # ---------------------------------------------------------------- ACTION
    def _invoke(self, ref, param, sw):
        """Invoke one method with the client's rights; return data goes into sw."""
        found = self.device.lookup(self.client, ref.obis)
        if found is None:
            return xdlms.DAR_OBJECT_UNDEFINED
        obj, rights = found
        if ref.class_id != obj.CLASS_ID:
            return xdlms.DAR_OBJECT_CLASS_INCONSISTENT
        m = ref.attr
        if m < 1 or m > len(obj.METHODS):
            return xdlms.DAR_OBJECT_UNAVAILABLE
        if not rights[1][m - 1]:
            return xdlms.DAR_READ_WRITE_DENIED
        mark = sw.pos
        try:
            res = obj.action(m, param, sw, self)
        except axdr.BufferFull:
            res = xdlms.DAR_OTHER_REASON
        except (TypeError, ValueError, IndexError):
            res = xdlms.DAR_TYPE_UNMATCHED
        except Exception:
            res = xdlms.DAR_HARDWARE_FAULT
        if res:
            sw.pos = mark
        return res

    def _action_result(self, w, ref, param):
        """Action-Response-With-Optional-Data for one method."""
        sw = self.pump.reset()
        res = self._invoke(ref, param, sw)
        w.u8(res)
        if sw.pos:
            w.u8(1)  # return-parameters present
            w.u8(0)  # Get-Data-Result: data
            w.raw(self.pump.scratch, 0, sw.pos)
        else:
            w.u8(0)

    def _action(self, buf, n, out, w):
        req = self.req
        xdlms.decode_action(buf, n, req)
        kind = req.kind
        if kind == xdlms.ACTION_NEXT_PBLOCK:
            return self._action_next(req, out, w)
        if kind != xdlms.ACTION_PBLOCK:
            self._abort_block()  # any new request abandons a transfer in progress
        if kind == xdlms.ACTION_NORMAL:
            self._action_normal(req.invoke, req.refs[0], req.values[0], out, w)
        elif kind == xdlms.ACTION_WITH_LIST:
            self._action_list(req.invoke, req.count, req.values, w)
        else:
            first = kind != xdlms.ACTION_PBLOCK
            if first:
                req.count = req.count if kind == xdlms.ACTION_LIST_FIRST_PBLOCK else 0
            dar = self._collect(buf, req, first, xdlms.ACTION_REQUEST)
            if dar:
                if dar == xdlms.DAR_NO_LONG_SET_IN_PROGRESS:
                    dar = xdlms.DAR_NO_LONG_GET_IN_PROGRESS  # 16: no-long-action-in-progress
                elif dar != xdlms.DAR_LONG_GET_ABORTED:
                    dar = xdlms.DAR_LONG_GET_ABORTED  # 15: long-action-aborted
                self._abort_block()
                w.u8(xdlms.ACTION_RESPONSE)
                w.u8(xdlms.ACTION_NORMAL)
                w.u8(req.invoke)
                w.u8(dar)
                w.u8(0)
                return None
            if not req.last:
                w.u8(xdlms.ACTION_RESPONSE)
                w.u8(xdlms.ACTION_RESP_NEXT_PBLOCK)
                w.u8(req.invoke)
                w.u32(req.block)
                return None
            count = self._set_count
            try:
                values = self._collected_values(count)
            except axdr.DecodeError:
                values = None
            self._abort_block()
            if values is None:
                w.u8(xdlms.ACTION_RESPONSE)
                w.u8(xdlms.ACTION_NORMAL)
                w.u8(req.invoke)
                w.u8(xdlms.DAR_TYPE_UNMATCHED)
                w.u8(0)
            elif count == 0:
                self._action_normal(req.invoke, self.req.refs[0], values[0], out, w)
            else:
                self._action_list(req.invoke, count, values, w)
        return None

    def _action_normal(self, invoke, ref, param, out, w):
        """ACTION-Response-Normal, or With-Pblock when the return data does not fit."""
        sw = self.pump.reset()
        res = self._invoke(ref, param, sw)
        size = sw.pos
        if res == 0 and size and 7 + size > self._limit(out):
            # Return data too long for one response: ACTION-Response-With-Pblock, the
            # raw data being the return parameter (a Data), continued by next-pblock.
            self.pump.start(None)
            self.block_tag = xdlms.ACTION_RESPONSE
            self.block_invoke = invoke
            self.block_no = 1
            pos = self.pump.fill(out, _DATABLOCK_HEADER, self._limit(out))
            self._emit_block(out, w, pos - _DATABLOCK_HEADER)
            return
        w.u8(xdlms.ACTION_RESPONSE)
        w.u8(xdlms.ACTION_NORMAL)
        w.u8(invoke)
        w.u8(res)
        if size:
            w.u8(1)  # return-parameters present
            w.u8(0)  # Get-Data-Result: data
            w.raw(self.pump.scratch, 0, size)
        else:
            w.u8(0)
        self.pump.reset()

    def _action_list(self, invoke, count, values, w):
        w.u8(xdlms.ACTION_RESPONSE)
        w.u8(xdlms.ACTION_WITH_LIST)
        w.u8(invoke)
        w.length(count)
        for i in range(count):
            self._action_result(w, self.req.refs[i], values[i])
        self.pump.reset()

    def _action_next(self, req, out, w):
        """ACTION-Request-Next-Pblock: the client acknowledges a pblock of our response."""
        if self.block_no == 0 or self.block_tag != xdlms.ACTION_RESPONSE:
            self._abort_block()
            self._block_error(req.invoke, req.block, xdlms.DAR_NO_LONG_GET_IN_PROGRESS, w,
                              xdlms.ACTION_RESPONSE)
            return None
        if req.block != self.block_no:
            self._abort_block()
            self._block_error(req.invoke, req.block, xdlms.DAR_LONG_GET_ABORTED, w,
                              xdlms.ACTION_RESPONSE)
            return None
        self.block_no += 1
        pos = self.pump.fill(out, _DATABLOCK_HEADER, self._limit(out))
        self._emit_block(out, w, pos - _DATABLOCK_HEADER)
        return None

    # ---------------------------------------------------------------- GET
    def _limit(self, out):
        lim = len(out)
        if self.client_max_pdu and self.client_max_pdu < lim:
            lim = self.client_max_pdu
        return lim

    def _open_value(self, ref, w):
        """Look ref up with the client's rights; on success the value is started in the pump.

        Returns a Data-Access-Result (0 = the pump holds the value).
        """
        found = self.device.lookup(self.client, ref.obis)
        if found is None:
            return xdlms.DAR_OBJECT_UNDEFINED
        obj, rights = found
        if ref.class_id != obj.CLASS_ID:
            return xdlms.DAR_OBJECT_CLASS_INCONSISTENT
        a = ref.attr
        if a < 1 or a > len(obj.ATTRS):
            return xdlms.DAR_OBJECT_UNAVAILABLE
        if not rights[0][a - 1] & 1:
            return xdlms.DAR_READ_WRITE_DENIED
        mark = w.pos
        try:
            res = obj.get(a, w, self, ref)
        except axdr.BufferFull:
            w.pos = mark
            return xdlms.DAR_OTHER_REASON
        except Exception:  # a faulty value source answers, it does not crash the meter
            w.pos = mark
            return xdlms.DAR_HARDWARE_FAULT
        if isinstance(res, int):
            if res:
                w.pos = mark
            return res
        return res  # a generator: the caller streams it

    def _get(self, buf, n, out, w):
        req = self.req
        xdlms.decode_get(buf, n, req)
        if req.kind == xdlms.GET_NEXT:
            self._get_next(req, out, w)
            return
        self._abort_block()  # a new request abandons any transfer in progress
        pump = self.pump
        sw = pump.reset()
        if req.kind == xdlms.GET_NORMAL:
            res = self._open_value(req.refs[0], sw)
            if isinstance(res, int) and res:
                w.u8(xdlms.GET_RESPONSE)
                w.u8(xdlms.GET_NORMAL)
                w.u8(req.invoke)
                w.u8(1)
                w.u8(res)
                return
            pump.start(None if isinstance(res, int) else res)
            self._first_block(xdlms.GET_NORMAL, req.invoke, out, w, 4)
        else:
            if not self.conformance & acse.CONF_MULTIPLE_REFERENCES:
                self._not_allowed(w)
                return
            pump.start(self._list_source(req, pump.w))
            self._first_block(xdlms.GET_WITH_LIST, req.invoke, out, w, 3)

    def _list_source(self, req, w):
        """GET-Response-With-List body: count, then Get-Data-Result per reference."""
        w.length(req.count)
        yield
        for i in range(req.count):
            w.u8(0)
            res = self._open_value(req.refs[i], w)
            if isinstance(res, int):
                if res:
                    w.pos -= 1
                    w.u8(1)
                    w.u8(res)
                yield
            else:
                for _ in res:
                    yield

    def _first_block(self, kind, invoke, out, w, head):
        """Try the whole value as a normal response; fall back to block transfer."""
        limit = self._limit(out)
        pump = self.pump
        # Fill as if for a datablock; if everything fits a normal response, move it down.
        pos = pump.fill(out, _DATABLOCK_HEADER, limit)
        if pump.failed:
            self._dar_response(kind, invoke, pump.failed, w)
            return
        size = pos - _DATABLOCK_HEADER
        if pump.done and head + size <= limit:
            out[0] = xdlms.GET_RESPONSE
            out[1] = kind
            out[2] = invoke
            if kind == xdlms.GET_NORMAL:
                out[3] = 0  # Get-Data-Result: data
            _move(out, head, _DATABLOCK_HEADER, size)
            w.pos = head + size
            return
        self.block_tag = xdlms.GET_RESPONSE
        self.block_invoke = invoke
        self.block_no = 1
        self._emit_block(out, w, size)

    def _emit_block(self, out, w, size):
        """The data of the current block is at out[_DATABLOCK_HEADER:+size]: add the header.

        GET-Response-With-Datablock: C4 02 invoke last block(4) 00(raw-data) length data;
        ACTION-Response-With-Pblock:  C7 02 invoke last block(4) length data (DataBlock-SA).
        """
        last = self.pump.done
        is_get = self.block_tag == xdlms.GET_RESPONSE
        head = (9 if is_get else 8) + _len_size(size)
        start = _DATABLOCK_HEADER - head
        w.pos = start
        w.u8(self.block_tag)
        w.u8(2)  # with-datablock / with-pblock
        w.u8(self.block_invoke)
        w.u8(1 if last else 0)
        w.u32(self.block_no)
        if is_get:
            w.u8(0)  # raw-data
        w.length(size)
        _move(out, 0, start, head + size)
        w.pos = head + size
        if last:
            self._abort_block()

    def _get_next(self, req, out, w):
        if self.block_no == 0 or self.block_tag != xdlms.GET_RESPONSE:
            self._abort_block()
            self._block_error(req.invoke, req.block, xdlms.DAR_NO_LONG_GET_IN_PROGRESS, w)
            return
        if req.block != self.block_no:
            self._abort_block()
            self._block_error(req.invoke, req.block, xdlms.DAR_DATA_BLOCK_NUMBER_INVALID, w)
            return
        self.block_no += 1
        pos = self.pump.fill(out, _DATABLOCK_HEADER, self._limit(out))
        if self.pump.failed:
            dar = self.pump.failed
            block = self.block_no  # the number of this (last) block: taken before the abort
            self._abort_block()
            self._block_error(req.invoke, block, dar, w)
            return
        self._emit_block(out, w, pos - _DATABLOCK_HEADER)

    def _block_error(self, invoke, block, dar, w, tag=xdlms.GET_RESPONSE):
        """A last block carrying a failure. GET: DataBlock-G with a data-access-result.
        ACTION: ACTION-Response-Normal with that result (DataBlock-SA has no result)."""
        w.reset()
        w.u8(tag)
        if tag == xdlms.ACTION_RESPONSE:
            w.u8(xdlms.ACTION_NORMAL)
            w.u8(invoke)
            w.u8(dar)
            w.u8(0)
            return
        w.u8(xdlms.GET_WITH_DATABLOCK)
        w.u8(invoke)
        w.u8(1)  # last-block
        w.u32(block)
        w.u8(1)  # data-access-result
        w.u8(dar)

    def _dar_response(self, kind, invoke, dar, w):
        self._abort_block()
        w.reset()
        w.u8(xdlms.GET_RESPONSE)
        if kind == xdlms.GET_NORMAL:
            w.u8(xdlms.GET_NORMAL)
            w.u8(invoke)
            w.u8(1)
            w.u8(dar)
        else:  # with-list whose source failed mid-way: every result is that failure
            w.u8(xdlms.GET_WITH_LIST)
            w.u8(invoke)
            w.length(self.req.count)
            for _ in range(self.req.count):
                w.u8(1)
                w.u8(dar)


def _move(buf, dst, src, n):
    """memmove inside one buffer (left moves only, which is all this module needs)."""
    if dst == src:
        return
    for i in range(n):
        buf[dst + i] = buf[src + i]

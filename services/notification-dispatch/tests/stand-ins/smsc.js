#!/usr/bin/env node
// Stand-in SMSC for tests, built on the npm `smpp` package (0.5.x): smpp.createServer.
//
// env:
//   SMSC_PORT       port to listen on (default 2775), bound on SMSC_HOST (default 127.0.0.1)
//   SMSC_SYSTEM_ID  accepted system_id(s), comma separated (default "test")
//   SMSC_PASSWORD   password(s), comma separated, paired by position with SMSC_SYSTEM_ID
//                   (one password for all ids if only one is given; default "test")
//   SMSC_LOG        file to append one JSON line per received submit_sm (default ./smsc.log.jsonl)
//   SMSC_FAIL=1     answer every submit_sm with SMSC_FAIL_STATUS (default ESME_RSYSERR = 0x08)
//   SMSC_DLR_DELAY_MS  delay before the delivery receipt (default 200)
//   SMSC_DLR_STAT   the receipts' stat (default DELIVRD; UNDELIV for phones never reached)
//   SMSC_RESP_DELAY_MS delay before each submit_sm_resp, as a distant SMSC's (default 0)
//   SMSC_WINDOW     submit_sm a session may have unanswered; past it ESME_RTHROTTLED (default:
//                   no limit). Each log line has `outstanding`: unanswered ones, itself included.
//
// Prints "listening <port>" on stdout once ready.
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const smpp = require('smpp');

const PORT = parseInt(process.env.SMSC_PORT || '2775', 10);
const HOST = process.env.SMSC_HOST || '127.0.0.1';
const IDS = (process.env.SMSC_SYSTEM_ID || 'test').split(',');
const PWS = (process.env.SMSC_PASSWORD || 'test').split(',');
const LOG = process.env.SMSC_LOG || path.join(process.cwd(), 'smsc.log.jsonl');
const FAIL = process.env.SMSC_FAIL === '1';
const FAIL_STATUS = process.env.SMSC_FAIL_STATUS
  ? parseInt(process.env.SMSC_FAIL_STATUS, 0) : smpp.ESME_RSYSERR;
const DLR_DELAY = parseInt(process.env.SMSC_DLR_DELAY_MS || '200', 10);
const DLR_STAT = process.env.SMSC_DLR_STAT || 'DELIVRD';
const RESP_DELAY = parseInt(process.env.SMSC_RESP_DELAY_MS || '0', 10);
const WINDOW = process.env.SMSC_WINDOW ? parseInt(process.env.SMSC_WINDOW, 10) : Infinity;
const ESME_RTHROTTLED = 0x58;

// Keep short_message / message_payload of submit_sm as raw Buffers (node-smpp would
// otherwise decode them into {udh, message} with its own, lossy, charset guess).
delete smpp.commands.submit_sm.params.short_message.filter;
delete smpp.tlvs.message_payload.filter;

function credentialsOk(id, pw) {
  const i = IDS.indexOf(id);
  if (i < 0) return false;
  const expected = PWS.length === 1 ? PWS[0] : PWS[i];
  return expected === pw;
}

let counter = 0;
const idPrefix = crypto.randomBytes(3).toString('hex');
function nextMessageId() {
  counter += 1;
  return idPrefix + counter.toString(16).padStart(6, '0'); // 12 hex chars, unique per run
}

// UDH: list of information elements; IEI 0x00 (8-bit ref) / 0x08 (16-bit ref) = concatenation.
function parseUdh(buf) {
  const udhl = buf[0];
  const ies = [];
  let concat = null;
  let i = 1;
  while (i + 1 < udhl + 1) {
    const iei = buf[i], len = buf[i + 1];
    const data = buf.slice(i + 2, i + 2 + len);
    ies.push({ iei, data: data.toString('hex') });
    if (iei === 0x00 && len === 3) concat = { ref: data[0], total: data[1], seq: data[2], ref_bits: 8 };
    if (iei === 0x08 && len === 4) concat = { ref: data.readUInt16BE(0), total: data[2], seq: data[3], ref_bits: 16 };
    i += 2 + len;
  }
  return { udh: buf.slice(0, udhl + 1), ies, concat, body: buf.slice(udhl + 1) };
}

function decodeText(buf, dataCoding) {
  const dc = dataCoding & 0xff;
  if (dc === 0x08) return smpp.encodings.UCS2.decode(buf);          // UTF-16BE (UCS-2 superset)
  if (dc === 0x03) return smpp.encodings.LATIN1.decode(buf);
  if (dc === 0x01) return buf.toString('latin1');                   // IA5 / ASCII
  if (dc === 0x00 || (dc & 0xf0) === 0xf0) return smpp.encodings.ASCII.decode(buf); // GSM 03.38 unpacked
  return null;                                                      // binary / unknown
}

function pad2(n) { return String(n).padStart(2, '0'); }
function smppDate(d) { // YYMMDDhhmm as used in receipt text
  return pad2(d.getUTCFullYear() % 100) + pad2(d.getUTCMonth() + 1) + pad2(d.getUTCDate()) +
    pad2(d.getUTCHours()) + pad2(d.getUTCMinutes());
}

function appendLog(obj) {
  fs.appendFileSync(LOG, JSON.stringify(obj) + '\n');
}

// Concatenation reassembly (for the log only): key -> {total, parts: Map(seq -> text)}
const pending = new Map();

const server = smpp.createServer(function (session) {
  session.bound = null; // 'transceiver' | 'transmitter' | 'receiver'
  session.outstanding = 0; // submit_sm received and not yet answered
  const peer = session.socket.remoteAddress + ':' + session.socket.remotePort;
  session.socket.setNoDelay(true); // as SMSCs do: answers in a window are small
  console.log('session open', peer);

  function onBind(kind) {
    return function (pdu) {
      if (session.bound) {
        session.send(pdu.response({ command_status: smpp.ESME_RALYBND }));
        return;
      }
      if (!credentialsOk(pdu.system_id, pdu.password)) {
        console.log('bind refused', kind, pdu.system_id);
        session.send(pdu.response({ command_status: smpp.ESME_RBINDFAIL }));
        session.close();
        return;
      }
      session.bound = kind;
      session.system_id = pdu.system_id;
      console.log('bound', kind, pdu.system_id, 'interface_version=0x' + (pdu.interface_version || 0).toString(16));
      session.send(pdu.response({ system_id: 'SMSCSIM' }));
    };
  }
  session.on('bind_transceiver', onBind('transceiver'));
  session.on('bind_transmitter', onBind('transmitter'));
  session.on('bind_receiver', onBind('receiver'));

  session.on('enquire_link', function (pdu) {
    console.log('enquire_link seq=' + pdu.sequence_number);
    session.send(pdu.response());
  });

  session.on('unbind', function (pdu) {
    console.log('unbind', session.system_id);
    session.send(pdu.response());
    session.bound = null;
    // let the ESME close first (it normally does right after unbind_resp); close after 1 s otherwise
    setTimeout(function () { session.close(); }, 1000).unref();
  });

  session.on('deliver_sm_resp', function (pdu) {
    console.log('deliver_sm_resp seq=' + pdu.sequence_number + ' status=' + pdu.command_status);
  });

  session.on('unknown', function (pdu) {
    session.send(pdu.response());
  });

  session.on('submit_sm', function (pdu) {
    if (session.bound !== 'transceiver' && session.bound !== 'transmitter') {
      session.send(pdu.response({ command_status: smpp.ESME_RINVBNDSTS }));
      return;
    }
    let sm = Buffer.isBuffer(pdu.short_message) ? pdu.short_message : Buffer.alloc(0);
    const usedPayload = sm.length === 0 && Buffer.isBuffer(pdu.message_payload);
    if (usedPayload) sm = pdu.message_payload;
    const esm = pdu.esm_class || 0;
    session.outstanding += 1;
    const rec = {
      outstanding: session.outstanding,
      ts: new Date().toISOString(),
      system_id: session.system_id,
      sequence_number: pdu.sequence_number,
      source_addr: pdu.source_addr,
      destination_addr: pdu.destination_addr,
      esm_class: esm,
      data_coding: pdu.data_coding,
      registered_delivery: pdu.registered_delivery,
      sm_length: sm.length,
      message_payload_used: usedPayload,
      short_message_hex: sm.toString('hex'),
    };
    let body = sm;
    if (esm & 0x40 && sm.length > 0) {
      const u = parseUdh(sm);
      rec.udh_hex = u.udh.toString('hex');
      rec.udh_ies = u.ies;
      if (u.concat) rec.concat = u.concat;
      body = u.body;
    }
    if (pdu.sar_msg_ref_num !== undefined || pdu.sar_total_segments !== undefined) {
      rec.sar = { ref: pdu.sar_msg_ref_num, total: pdu.sar_total_segments, seq: pdu.sar_segment_seqnum };
    }
    rec.text = decodeText(body, pdu.data_coding);

    const c = rec.concat || rec.sar;
    if (c && rec.text !== null) {
      const key = [session.system_id, pdu.source_addr, pdu.destination_addr, c.ref, c.total].join('|');
      const entry = pending.get(key) || { total: c.total, parts: new Map() };
      entry.parts.set(c.seq, rec.text);
      pending.set(key, entry);
      if (entry.parts.size === entry.total) {
        let full = '';
        for (let s = 1; s <= entry.total; s++) full += entry.parts.get(s) || '';
        rec.reassembled_text = full;
        rec.reassembled_chars = [...full].length;
        pending.delete(key);
      }
    }

    if (FAIL || session.outstanding > WINDOW) {
      const status = FAIL ? FAIL_STATUS : ESME_RTHROTTLED;
      rec.message_id = null;
      rec.command_status = status;
      appendLog(rec);
      console.log('submit_sm refused status=0x' + status.toString(16));
      session.outstanding -= 1;
      session.send(pdu.response({ command_status: status }));
      return;
    }
    if (RESP_DELAY > 0) setTimeout(accept, RESP_DELAY); else accept();

    function accept() {
      session.outstanding -= 1;
      const messageId = nextMessageId();
      rec.message_id = messageId;
      rec.command_status = 0;
      appendLog(rec);
      console.log('submit_sm id=' + messageId + ' to=' + pdu.destination_addr + ' dc=' + pdu.data_coding +
        ' esm=0x' + esm.toString(16) + (c ? ' part ' + c.seq + '/' + c.total : '') + ' len=' + sm.length);
      session.send(pdu.response({ message_id: messageId }));

      // SMSC delivery receipt requested? registered_delivery bits 0-1 == 01 (always) or 11 (SMPP 5).
      const want = (pdu.registered_delivery || 0) & 0x03;
      if (want !== 0x01 && want !== 0x03) return;
      const submitted = new Date();
      setTimeout(function () {
        // deliver to this session if it can receive, else to another rx/trx session of the same system_id
        let target = session;
        if (session.bound !== 'transceiver' && session.bound !== 'receiver') {
          target = server.sessions.find(s => s.system_id === session.system_id &&
            (s.bound === 'transceiver' || s.bound === 'receiver'));
        }
        if (!target || !target.bound) { console.log('no receiver for receipt', messageId); return; }
        const text20 = [...(rec.text || '')].slice(0, 20).join('').replace(/[^\x20-\x7e]/g, '?');
        const receipt = 'id:' + messageId + ' sub:001 dlvrd:001 submit date:' + smppDate(submitted) +
          ' done date:' + smppDate(new Date()) + ' stat:' + DLR_STAT + ' err:000 text:' + text20;
        target.deliver_sm({
          source_addr: pdu.destination_addr,
          destination_addr: pdu.source_addr,
          esm_class: 0x04,                       // MC delivery receipt
          data_coding: 0x00,
          short_message: Buffer.from(receipt, 'latin1'),
          receipted_message_id: messageId,
          message_state: DLR_STAT === 'DELIVRD' ? 2 : 5, // DELIVERED, UNDELIVERABLE
        });
        console.log('deliver_sm receipt for ' + messageId);
      }, DLR_DELAY);
    }
  });

  session.on('error', function (e) { console.error('session error', peer, e.message); });
  session.on('close', function () { console.log('session closed', peer); });
});

server.on('error', function (e) { console.error('server error', e.message); process.exit(1); });
server.listen(PORT, HOST, function () {
  console.log('listening ' + server.address().port);
});
function stop() { server.close(); for (const s of server.sessions.slice()) s.destroy(); process.exit(0); }
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

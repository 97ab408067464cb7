// koel softphone page: a WebRTC caller for koel's KooKoo emulator.
// Plain JavaScript, no build step. Works in Chromium and Firefox.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const el = {
    status: $('status'), call: $('call'), hangup: $('hangup'), level: $('level'),
    keypad: $('keypad'), remote: $('remote'), transcript: $('transcript'), turns: $('turns'),
    connection: $('connection'), appurl: $('appurl'), silence: $('silence'), maxrec: $('maxrec'),
    dial: $('dial'), dialdur: $('dialdur'), confdur: $('confdur'), strict: $('strict'),
  };
  // A signed link (/sim/?connection=ID&t=TOKEN) authorizes calls outside
  // development mode.
  const params = new URLSearchParams(location.search);
  const linkToken = params.get('t') || '';
  const KEYS = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0', '#'];
  let pc = null, dc = null, mic = null, sender = null, audioCtx = null, meterTimer = null;
  let partialItem = null, turnNo = 0, ending = false;

  // Settings persist in localStorage.
  const saved = JSON.parse(localStorage.getItem('koel-sim') || '{}');
  if (saved.connection) el.connection.value = saved.connection;
  if (saved.appurl) el.appurl.value = saved.appurl;
  if (saved.silence) el.silence.value = saved.silence;
  if (saved.maxrec) el.maxrec.value = saved.maxrec;
  if (saved.mode) document.querySelector('input[name=mode][value="' + saved.mode + '"]').checked = true;
  if (saved.dial) el.dial.value = saved.dial;
  if (saved.dialdur) el.dialdur.value = saved.dialdur;
  if (saved.confdur) el.confdur.value = saved.confdur;
  el.strict.checked = !!saved.strict;
  if (params.get('connection')) {
    el.connection.value = params.get('connection');
    document.querySelector('input[name=mode][value="connection"]').checked = true;
  }

  function settings() {
    const mode = document.querySelector('input[name=mode]:checked').value;
    const s = { mode, connection: el.connection.value.trim(), appurl: el.appurl.value.trim(),
      silence: el.silence.value, maxrec: el.maxrec.value,
      dial: el.dial.value, dialdur: el.dialdur.value, confdur: el.confdur.value, strict: el.strict.checked };
    localStorage.setItem('koel-sim', JSON.stringify(s));
    return s;
  }

  function setStatus(text, cls) {
    el.status.textContent = text;
    el.status.className = 'status' + (cls ? ' ' + cls : '');
  }

  function line(cls, who, text) {
    const li = document.createElement('li');
    li.className = cls;
    if (who) {
      const w = document.createElement('span');
      w.className = 'who';
      w.textContent = who;
      li.appendChild(w);
    }
    li.appendChild(document.createTextNode(text));
    el.transcript.appendChild(li);
    el.transcript.scrollTop = el.transcript.scrollHeight;
    return li;
  }

  function ms(v) { return v < 0 ? '—' : v + ' ms'; }
  function secs(v) { return (v / 1000).toFixed(2) + ' s'; }

  function addTurn(ev) {
    turnNo++;
    const tr = document.createElement('tr');
    const cells = [String(turnNo), ev.reason || '', secs(ev.speech_ms || 0), secs(ev.record_ms || 0), ms(ev.reply_ms)];
    for (const c of cells) {
      const td = document.createElement('td');
      td.textContent = c;
      tr.appendChild(td);
    }
    const td = document.createElement('td');
    if (ev.url) {
      const a = document.createElement('a');
      a.href = ev.url; a.textContent = 'wav'; a.target = '_blank'; a.rel = 'noopener';
      td.appendChild(a);
    }
    tr.appendChild(td);
    el.turns.appendChild(tr);
  }

  function onEvent(ev) {
    switch (ev.type) {
      case 'call': setStatus('in call', 'live'); line('event', '', 'call ' + ev.sid + ' → ' + (ev.text || '')); break;
      case 'request': line('event', '', 'event: ' + (ev.kookoo || '(follow-up)') + (ev.data ? ' data=' + ev.data : '') + (ev.status ? ' ' + ev.status : '')); break;
      case 'bot': line('bot', 'Bot', ev.text || ('♪ ' + (ev.url || ''))); break;
      case 'listen': setStatus(ev.mode === 'dtmf' ? 'waiting for keys' : ev.mode === 'conference' ? 'in conference (# leaves)' : 'listening', 'live'); break;
      case 'partial':
        if (!partialItem) partialItem = line('caller partial', 'You', '');
        partialItem.lastChild.textContent = ev.text;
        break;
      case 'caller':
        if (partialItem) { partialItem.remove(); partialItem = null; }
        line('caller', 'You', ev.text ? ev.text : '(nothing understood)');
        break;
      case 'turn': addTurn(ev); break;
      case 'dtmf': line('event', '', 'keys: ' + (ev.text || '(none, timeout)')); break;
      case 'dial': line('info', '', 'dial ' + ev.text + ' (simulated: ' + ev.status + ')'); break;
      case 'sms': line('info', '', 'sms: ' + ev.text); break;
      case 'warning': line('warning', 'Warning', ev.text); break;
      case 'conference': line('info', '', 'conference ' + ev.text + ' (simulated; press # to leave)'); break;
      case 'stream': line(ev.mode === 'error' ? 'warning' : 'info', '', 'stream ' + ev.mode + ': ' + ev.text); break;
      case 'info': line('info', '', ev.text); break;
      case 'error': line('error', '', 'error: ' + ev.text); setStatus('error', 'error'); break;
      case 'hangup':
        line('event', '', 'call ended by ' + ev.reason + (ev.text ? ': ' + ev.text : '') +
          ' (' + (ev.frames_late || 0) + ' late frames of ' + (ev.frames_sent || 0) + ')');
        stop(false, ev.reason === 'error' ? 'ended: error' : 'ended');
        break;
    }
  }

  function startMeter(stream) {
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return;
    audioCtx = new AC();
    const src = audioCtx.createMediaStreamSource(stream);
    const an = audioCtx.createAnalyser();
    an.fftSize = 512;
    src.connect(an);
    const buf = new Float32Array(an.fftSize);
    meterTimer = setInterval(() => {
      an.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const v of buf) sum += v * v;
      const db = 10 * Math.log10(sum / buf.length + 1e-10);
      el.level.style.width = Math.max(0, Math.min(100, (db + 60) * 100 / 60)) + '%';
    }, 60);
  }

  function waitGathering(conn) {
    if (conn.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, 3000);
      conn.addEventListener('icegatheringstatechange', () => {
        if (conn.iceGatheringState === 'complete') { clearTimeout(t); resolve(); }
      });
    });
  }

  async function call() {
    const s = settings();
    const body = { type: 'offer' };
    if (s.mode === 'url') body.app_url = s.appurl; else body.connection = s.connection;
    if (s.silence) body.silence_period = Number(s.silence);
    if (s.maxrec) body.max_record_time = Number(s.maxrec);
    if (s.dial) body.dial_outcome = s.dial;
    if (s.dialdur) body.dial_duration = Number(s.dialdur);
    if (s.confdur) body.conference_duration = Number(s.confdur);
    if (s.strict) body.strict = true;
    ending = false;
    el.call.disabled = true;
    setStatus('dialling…');
    try {
      mic = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: false, autoGainControl: false } });
      startMeter(mic);
      pc = new RTCPeerConnection({ iceServers: [] });
      sender = pc.addTrack(mic.getAudioTracks()[0], mic);
      dc = pc.createDataChannel('koel');
      dc.onmessage = (m) => { try { onEvent(JSON.parse(m.data)); } catch (e) { line('error', '', 'bad event: ' + e); } };
      pc.ontrack = (e) => { el.remote.srcObject = e.streams[0] || new MediaStream([e.track]); };
      pc.onconnectionstatechange = () => {
        if (pc && (pc.connectionState === 'failed')) { line('error', '', 'media connection failed'); stop(false, 'failed'); }
      };
      await pc.setLocalDescription(await pc.createOffer());
      await waitGathering(pc);
      body.sdp = pc.localDescription.sdp;
      const headers = { 'Content-Type': 'application/json' };
      if (linkToken) headers.Authorization = 'Bearer ' + linkToken;
      const res = await fetch('offer', { method: 'POST', headers, body: JSON.stringify(body) });
      const ans = await res.json().catch(() => ({ error_message: 'HTTP ' + res.status }));
      if (!res.ok) throw new Error(ans.error_message || ('HTTP ' + res.status));
      await pc.setRemoteDescription({ type: 'answer', sdp: ans.sdp });
      el.hangup.disabled = false;
      setStatus('connecting…', 'live');
    } catch (e) {
      line('error', '', 'call failed: ' + (e && e.message ? e.message : e));
      stop(false, 'error');
      setStatus('error', 'error');
    }
  }

  function stop(sendBye, text) {
    if (ending) return;
    ending = true;
    if (sendBye && dc && dc.readyState === 'open') {
      try { dc.send(JSON.stringify({ type: 'hangup' })); } catch (e) { /* closing anyway */ }
    }
    if (pc) { pc.close(); pc = null; }
    dc = null; sender = null;
    if (mic) { mic.getTracks().forEach((t) => t.stop()); mic = null; }
    if (meterTimer) { clearInterval(meterTimer); meterTimer = null; }
    if (audioCtx) { audioCtx.close(); audioCtx = null; }
    el.level.style.width = '0';
    el.call.disabled = false;
    el.hangup.disabled = true;
    if (text) setStatus(text);
  }

  function press(key) {
    if (!pc) return;
    if (sender && sender.dtmf && sender.dtmf.canInsertDTMF) {
      sender.dtmf.insertDTMF(key, 100, 70);
    } else if (dc && dc.readyState === 'open') {
      dc.send(JSON.stringify({ type: 'dtmf', digits: key }));
    }
    line('event', '', 'pressed ' + key);
  }

  for (const k of KEYS) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = k;
    b.addEventListener('click', () => press(k));
    el.keypad.appendChild(b);
  }
  el.call.addEventListener('click', call);
  el.hangup.addEventListener('click', () => stop(true, 'ended'));
  window.addEventListener('pagehide', () => stop(true, ''));
})();

// The page of `asr serve`: a picked file or a microphone recording goes to
// POST /v1/audio/transcriptions (verbose_json); the transcript and its timed words come back.
// Recordings are sent as 16 kHz 16-bit WAV (the server reads MediaRecorder's WebM/Opus only
// with PyAV installed; WAV needs nothing). While recording, the microphone also streams to the
// WebSocket /v1/stream (the Vosk protocol) and its partial text shows live; a server whose
// model cannot stream closes the socket with its reason, and the page says so.
"use strict";

const SAMPLE_RATE = 16000; // the model's rate; the microphone runs at the browser's own
const byId = (id) => document.getElementById(id);

function setStatus(text, state) {
  const status = byId("status");
  status.textContent = text;
  status.dataset.state = state;
}

function showWords(words) {
  const body = byId("words").tBodies[0];
  body.replaceChildren();
  for (const w of words) {
    const row = body.insertRow();
    const cells = [w.word, w.start.toFixed(2), w.end.toFixed(2), w.confidence.toFixed(2)];
    for (const value of cells) row.insertCell().textContent = value;
    row.addEventListener("click", () => playFrom(w.start));
  }
  byId("words").hidden = words.length === 0;
  byId("words-note").hidden = words.length === 0;
}

function playFrom(seconds) {
  const player = byId("player");
  player.currentTime = seconds;
  player.play();
}

// Subtitle cues from verbose_json's segments (the server's own cues): SRT or WebVTT.
function subtitles(segments, vtt) {
  const time = (s) => {
    const ms = Math.round(s * 1000);
    const pad = (n, w) => String(n).padStart(w, "0");
    const hms = `${pad(Math.floor(ms / 3600000), 2)}:${pad(Math.floor(ms / 60000) % 60, 2)}:${pad(Math.floor(ms / 1000) % 60, 2)}`;
    return `${hms}${vtt ? "." : ","}${pad(ms % 1000, 3)}`;
  };
  const cues = segments.map((s, i) => `${vtt ? "" : `${i + 1}\n`}${time(s.start)} --> ${time(s.end)}\n${s.text.trim()}\n`);
  return (vtt ? "WEBVTT\n\n" : "") + cues.join("\n");
}

function offer(id, text, type) {
  const link = byId(id);
  URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(new Blob([text], { type }));
}

function showResult(body, name) {
  const stem = name.replace(/\.[^.]*$/, "") || "transcript";
  byId("transcript").textContent = body.text || "(no words recognized)";
  offer("save-txt", `${body.text}\n`, "text/plain");
  offer("save-srt", subtitles(body.segments, false), "application/x-subrip");
  offer("save-vtt", subtitles(body.segments, true), "text/vtt");
  for (const [id, ext] of [["save-txt", "txt"], ["save-srt", "srt"], ["save-vtt", "vtt"]]) {
    byId(id).download = `${stem}.${ext}`;
  }
  showWords(body.words);
  byId("result").hidden = false;
  byId("live-section").hidden = true; // the transcript replaces the live text
}

async function transcribe(blob, name) {
  const player = byId("player");
  URL.revokeObjectURL(player.src);
  player.src = URL.createObjectURL(blob);
  player.hidden = true; // shown once the server has read the audio
  byId("result").hidden = true;
  showWords([]);
  setStatus(`Transcribing ${name}…`, "busy");
  const form = new FormData();
  form.append("file", blob, name);
  form.append("response_format", "verbose_json");
  const started = performance.now();
  let response, body;
  try {
    response = await fetch("/v1/audio/transcriptions", { method: "POST", body: form });
    body = await response.json();
  } catch (err) {
    setStatus(`Request failed: ${err}`, "error");
    return;
  }
  if (!response.ok) {
    const why = body.error ? body.error.message.replace(`${name}: `, "") : `error ${response.status}`;
    setStatus(`Could not transcribe ${name}: ${why}`, "error");
    return;
  }
  const seconds = (performance.now() - started) / 1000;
  showResult(body, name);
  player.hidden = false;
  const audio = body.duration.toFixed(1);
  setStatus(`${name}: ${audio} s of audio transcribed in ${seconds.toFixed(2)} s`, "done");
}

// --- recording ---------------------------------------------------------------------------

let recording = null; // {stream, context, node, blocks, live} while the microphone is on
const SEND_SECONDS = 0.1; // audio per WebSocket message

async function startRecording() {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const context = new AudioContext();
  await context.audioWorklet.addModule("/static/recorder-worklet.js");
  const node = new AudioWorkletNode(context, "recorder");
  const blocks = [];
  const live = openLive(context.sampleRate);
  node.port.onmessage = (event) => {
    blocks.push(event.data);
    live.push(event.data);
  };
  context.createMediaStreamSource(stream).connect(node);
  node.connect(context.destination); // pulls the node through the graph; it outputs silence
  recording = { stream, context, node, blocks, live };
}

// The live transcript: finals, then the partial text, in #live.
function openLive(rate) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/v1/stream`);
  const finals = [];
  let pending = [];
  let pendingLength = 0;
  const show = (partial) => {
    byId("live").textContent = [...finals, partial].filter((t) => t).join(" ");
    byId("live-section").hidden = false;
  };
  socket.onopen = () => socket.send(JSON.stringify({ config: { sample_rate: rate, words: true } }));
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if ("partial" in message) show(message.partial);
    else if (message.text) {
      finals.push(message.text);
      show("");
    }
  };
  socket.onclose = (event) => {
    if (event.code !== 1000 && event.reason) {
      byId("live-note").textContent = `No live text while recording (${event.reason}); the transcript comes when you stop.`;
    }
  };
  return {
    push(block) {
      pending.push(block);
      pendingLength += block.length;
      if (pendingLength >= SEND_SECONDS * rate && socket.readyState === WebSocket.OPEN) {
        socket.send(pcm16(concat(pending)));
        pending = [];
        pendingLength = 0;
      }
    },
    close() {
      if (socket.readyState !== WebSocket.OPEN) return;
      if (pendingLength) socket.send(pcm16(concat(pending)));
      socket.send(JSON.stringify({ eof: 1 }));
    },
  };
}

// Float samples -> little-endian 16-bit PCM bytes.
function pcm16(samples) {
  const view = new DataView(new ArrayBuffer(2 * samples.length));
  samples.forEach((x, i) => {
    const clipped = Math.max(-1, Math.min(1, x));
    view.setInt16(2 * i, clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff, true);
  });
  return view.buffer;
}

async function stopRecording() {
  const { stream, context, node, blocks, live } = recording;
  recording = null;
  live.close();
  node.disconnect();
  stream.getTracks().forEach((track) => track.stop());
  await context.close();
  const samples = concat(blocks);
  if (samples.length === 0) {
    setStatus("Nothing was recorded", "error");
    return;
  }
  const wave = await resample(samples, context.sampleRate, SAMPLE_RATE);
  await transcribe(encodeWav(wave, SAMPLE_RATE), "recording.wav");
}

function concat(blocks) {
  const out = new Float32Array(blocks.reduce((n, b) => n + b.length, 0));
  let offset = 0;
  for (const block of blocks) {
    out.set(block, offset);
    offset += block.length;
  }
  return out;
}

// Band-limited resampling by the browser's own audio engine.
async function resample(samples, fromRate, toRate) {
  if (fromRate === toRate) return samples;
  const length = Math.ceil((samples.length * toRate) / fromRate);
  const offline = new OfflineAudioContext(1, length, toRate);
  const buffer = offline.createBuffer(1, samples.length, fromRate);
  buffer.copyToChannel(samples, 0);
  const source = offline.createBufferSource();
  source.buffer = buffer;
  source.connect(offline.destination);
  source.start();
  return (await offline.startRendering()).getChannelData(0);
}

// Mono 16-bit PCM WAV: a 44-byte RIFF header, then the samples, little-endian.
function encodeWav(samples, rate) {
  const view = new DataView(new ArrayBuffer(44 + 2 * samples.length));
  const text = (offset, s) => [...s].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
  text(0, "RIFF");
  view.setUint32(4, 36 + 2 * samples.length, true);
  text(8, "WAVE");
  text(12, "fmt ");
  view.setUint32(16, 16, true); // fmt chunk size
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // channels
  view.setUint32(24, rate, true);
  view.setUint32(28, 2 * rate, true); // bytes per second
  view.setUint16(32, 2, true); // bytes per frame
  view.setUint16(34, 16, true); // bits per sample
  text(36, "data");
  view.setUint32(40, 2 * samples.length, true);
  samples.forEach((x, i) => {
    const clipped = Math.max(-1, Math.min(1, x));
    view.setInt16(44 + 2 * i, clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff, true);
  });
  return new Blob([view], { type: "audio/wav" });
}

async function toggleRecording() {
  const button = byId("record");
  try {
    if (recording === null) {
      byId("live").textContent = "";
      byId("live-note").textContent = "";
      await startRecording();
      button.textContent = "■ Stop";
      button.classList.add("recording");
      setStatus("Recording… press Stop to transcribe", "recording");
    } else {
      button.textContent = "● Record";
      button.classList.remove("recording");
      await stopRecording();
    }
  } catch (err) {
    recording = null;
    button.textContent = "Record";
    button.classList.remove("recording");
    setStatus(`Microphone unavailable: ${err.message || err}`, "error");
  }
}

byId("file").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (file) transcribe(file, file.name);
});
byId("record").addEventListener("click", toggleRecording);
byId("copy").addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(byId("transcript").textContent);
    setStatus("Transcript copied", "done");
  } catch (err) {
    setStatus(`Could not copy: ${err.message || err}`, "error");
  }
});

// The page of `asr serve`: a picked file or a microphone recording goes to
// POST /v1/audio/transcriptions (verbose_json); the transcript and its timed words come back.
// Recordings are sent as 16 kHz 16-bit WAV, since the server's libsndfile cannot read the
// WebM/Opus that MediaRecorder makes. While recording, the microphone also streams to the
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

async function transcribe(blob, name) {
  const player = byId("player");
  URL.revokeObjectURL(player.src);
  player.src = URL.createObjectURL(blob);
  player.hidden = false;
  byId("transcript").textContent = "";
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
    setStatus(`Error ${response.status}: ${body.error ? body.error.message : ""}`, "error");
    return;
  }
  const seconds = (performance.now() - started) / 1000;
  byId("transcript").textContent = body.text || "(no words recognized)";
  showWords(body.words);
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
    byId("live").hidden = false;
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
    if (event.code !== 1000 && event.reason) byId("live-note").textContent = `Live text off: ${event.reason}`;
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
      button.textContent = "Stop";
      button.classList.add("recording");
      setStatus("Recording… press Stop to transcribe", "recording");
    } else {
      button.textContent = "Record";
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

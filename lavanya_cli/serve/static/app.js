// The lavanya page: pick a voice, type, press Speak; the WAV streams in, then plays.
"use strict";

const $ = (id) => document.getElementById(id);

// BCP 47 tags for the languages Fastspeech2_HS speaks, so screen readers and fonts fit the text.
const LANGUAGE_TAGS = {
  assamese: "as", bengali: "bn", bodo: "brx", english: "en", gujarati: "gu", hindi: "hi",
  kannada: "kn", malayalam: "ml", manipuri: "mni", marathi: "mr", odia: "or", punjabi: "pa",
  rajasthani: "raj", tamil: "ta", telugu: "te", urdu: "ur",
};
const WAV_HEADER_BYTES = 44;

let maxChars = null;
let voices = [];
let inFlight = null;
let audioUrl = null;

function characters(text) {
  return Array.from(text).length; // code points, as the server counts
}

function titleCase(word) {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

function voiceLabel(voice) {
  let label = `${titleCase(voice.language)}, ${voice.gender}`;
  if (voice.variant) label += ` (${voice.variant})`;
  if (voice.demo) label += " [demo]";
  return label;
}

function showStatus(words) {
  $("status").textContent = words;
}

function showError(words) {
  const box = $("error");
  box.textContent = words;
  box.hidden = !words;
  if (words) {
    document.body.dataset.state = "error";
    box.scrollIntoView({ block: "nearest" });
  }
}

function updateCount() {
  const count = characters($("text").value);
  const over = maxChars !== null && count > maxChars;
  $("count").textContent = maxChars === null
    ? `${count} characters`
    : `${count} / ${maxChars} characters${over ? ": over the limit, shorten the text" : ""}`;
  $("count").classList.toggle("over", over);
}

function updateSpeed() {
  $("speed-value").textContent = `${Number($("speed").value).toFixed(2)}×`;
}

function selectedVoice() {
  return voices[Number($("voice").value)];
}

function voiceChanged() {
  const voice = selectedVoice();
  if (!voice) return;
  $("text").lang = LANGUAGE_TAGS[voice.language] || "";
  $("voice-note").textContent = `${voice.sample_rate} Hz, ${voice.engine}` +
    (voice.demo ? "; a small demo voice: it speaks, but not well" : "");
}

async function loadVoices() {
  let data;
  try {
    const response = await fetch("/api/voices");
    data = await response.json();
  } catch (error) {
    showError("Cannot reach the server to list its voices. Is lavanya serve still running?");
    return;
  }
  maxChars = data.limits.max_chars;
  // Speed is the inverse of the server's alpha (a duration scale); keep to what both allow.
  const speed = $("speed");
  speed.min = Math.max(0.5, 1 / data.limits.alpha.max).toFixed(2);
  speed.max = Math.min(2, 1 / data.limits.alpha.min).toFixed(2);
  voices = data.voices;
  const select = $("voice");
  select.replaceChildren(...voices.map((voice, index) => new Option(voiceLabel(voice), String(index))));
  voiceChanged();
  updateCount();
  if (!data.ready) {
    showStatus("The voices are still loading…");
    setTimeout(loadVoices, 2000);
  } else {
    showStatus(voices.length ? "Ready." : "This server has no voices.");
  }
}

// The server streams a WAV whose header says "length unknown"; once all of it has arrived, the
// real sizes go in, so players show the right duration and the download is a proper file.
function finishedWav(parts, size) {
  size -= (size - WAV_HEADER_BYTES) % 2; // a stream cut mid-sample loses that half sample
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    const room = Math.min(part.length, size - offset);
    bytes.set(part.subarray(0, room), offset);
    offset += room;
  }
  const view = new DataView(bytes.buffer);
  view.setUint32(4, size - 8, true);
  view.setUint32(40, size - WAV_HEADER_BYTES, true);
  return new Blob([bytes], { type: "audio/wav" });
}

async function errorWords(response) {
  let body = {};
  try {
    body = await response.json();
  } catch (error) {
    body = {};
  }
  const detail = body.detail ? ` (${body.detail})` : "";
  switch (response.status) {
    case 503: {
      if (body.error === "not_ready") return "The voices are still loading; try again in a few seconds.";
      const wait = response.headers.get("Retry-After");
      return `The server is busy with other requests; try again${wait ? ` in ${wait} s` : " shortly"}.${detail}`;
    }
    case 413: return `The text is too long for this server${detail}.`;
    case 422: return `This cannot be spoken${detail}.`;
    case 404: return `That voice is not on this server${detail}.`;
    case 504: return `Speaking took longer than the server allows${detail}.`;
    default: return `The server could not speak this (HTTP ${response.status})${detail}.`;
  }
}

// Before each request: the last request's audio, download and figures go, so whatever this one
// ends in (audio or an error) never sits beside the result of another text.
function clearResult() {
  const player = $("player");
  player.pause();
  player.removeAttribute("src");
  player.load(); // the element lets go of the old audio and shows no length
  if (audioUrl) URL.revokeObjectURL(audioUrl);
  audioUrl = null;
  const link = $("download");
  link.hidden = true;
  link.href = "#";
  $("stats").hidden = true;
  for (const figure of $("stats").querySelectorAll("dd")) figure.textContent = "";
}

function showResult(blob, seconds, elapsed, firstByte) {
  audioUrl = URL.createObjectURL(blob);
  const player = $("player");
  player.src = audioUrl;
  const link = $("download");
  link.href = audioUrl;
  link.download = `lavanya-${selectedVoice().language}-${selectedVoice().gender}.wav`;
  link.hidden = false;
  $("stat-time").textContent = `${elapsed.toFixed(2)} s`;
  $("stat-first").textContent = firstByte === null ? "no audio" : `${firstByte.toFixed(2)} s`;
  $("stat-audio").textContent = `${seconds.toFixed(2)} s`;
  $("stat-rtf").textContent = seconds > 0 ? (elapsed / seconds).toFixed(2) : "n/a";
  $("stats").hidden = false;
  player.play().catch(() => {}); // a browser may refuse to autoplay; the controls are there
}

// The words left out: the header holds the first ones (about 1 KB), X-Unpronounced-Count all.
function unpronounced(headers) {
  const listed = headers.get("X-Unpronounced");
  if (!listed) return "";
  const words = decodeURIComponent(listed).split(" ");
  const more = Number(headers.get("X-Unpronounced-Count") || words.length) - words.length;
  return ` Not pronounced: ${words.join(" ")}${more > 0 ? ` and ${more} more` : ""}.`;
}

async function speak(event) {
  event.preventDefault();
  clearResult();
  const voice = selectedVoice();
  if (!voice) {
    showError("There is no voice to speak with.");
    return;
  }
  if (inFlight) inFlight.abort();
  const controller = new AbortController();
  inFlight = controller;
  showError("");
  document.body.dataset.state = "speaking";
  showStatus("Speaking…");
  $("speak").disabled = true;
  const request = { text: $("text").value, lang: voice.language, gender: voice.gender,
                    alpha: Number((1 / Number($("speed").value)).toFixed(3)) };
  if (voice.variant) request.variant = voice.variant;
  const started = performance.now();
  try {
    const response = await fetch("/api/tts", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(request), signal: controller.signal,
    });
    if (!response.ok) {
      showStatus("");
      showError(await errorWords(response));
      return;
    }
    const reader = response.body.getReader();
    const parts = [];
    let size = 0;
    let firstByte = null;
    let cut = false;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (firstByte === null) firstByte = (performance.now() - started) / 1000;
        parts.push(value);
        size += value.length;
      }
    } catch (error) {
      if (controller.signal.aborted) return;
      cut = true; // the server closed the stream early (its time limit, or a failure)
    }
    const elapsed = (performance.now() - started) / 1000;
    const rate = Number(response.headers.get("X-Sample-Rate"));
    const seconds = Math.max(0, size - WAV_HEADER_BYTES) / 2 / rate;
    showResult(finishedWav(parts, size), seconds, elapsed, firstByte);
    document.body.dataset.state = "done";
    showStatus(`Done: ${seconds.toFixed(2)} s of audio.` + unpronounced(response.headers));
    if (cut) showError(`The server stopped part-way (time limit or failure); this is the ${seconds.toFixed(2)} s that arrived.`);
  } catch (error) {
    if (error.name === "AbortError") return;
    showStatus("");
    showError(`Cannot reach the server (${error.message}).`);
  } finally {
    if (inFlight === controller) {
      inFlight = null;
      $("speak").disabled = false;
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("speak-form").addEventListener("submit", speak);
  $("text").addEventListener("input", updateCount);
  $("text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("speak-form").requestSubmit();
  });
  $("speed").addEventListener("input", updateSpeed);
  $("voice").addEventListener("change", voiceChanged);
  updateSpeed();
  loadVoices();
});

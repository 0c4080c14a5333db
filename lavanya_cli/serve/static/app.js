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
// What the small status beside the picker says of the chosen voice, by its state on the server.
const STATE_WORDS = { resident: "ready", cold: "loads on first use (a few seconds)", loading: "loading…",
                      failed: "cannot be loaded on this server" };
const REFRESH_MS = 2000; // how often the voice list is asked for again while something loads

let maxChars = null;
let voices = []; // as GET /api/voices lists them, in the picker's order
let pickerKey = null; // the voices the picker was filled with (it is rebuilt only when they change)
let serverReady = null; // null until the voice list first arrives
let voicesAsked = 0; // numbers the voice-list requests, so an older answer never overrides a newer one
let refreshTimer = null;
let inFlight = null;
let voiceLoading = null; // { controller, name }: a request waiting for its voice to load
let audioUrl = null;

function characters(text) {
  return Array.from(text).length; // code points, as the server counts
}

function titleCase(word) {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

function compare(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

// The picker's order: by language (one group each), then gender, the plain voice before its variants.
function byLanguage(a, b) {
  return compare(a.language, b.language) || compare(a.gender, b.gender) ||
    compare(a.variant || "", b.variant || "");
}

function voiceName(voice) {
  return voice.name || `${voice.language}/${voice.gender}${voice.variant ? ` (${voice.variant})` : ""}`;
}

// Servers from before on-demand loading list loaded voices only, without a state.
function voiceState(voice) {
  return voice.state || "resident";
}

// An option's words within its language's group ...
function optionLabel(voice) {
  let label = voice.gender;
  if (voice.variant) label += ` (${voice.variant})`;
  if (voice.demo) label += " [demo]";
  return label;
}

// ... and its whole name, which screen readers announce (not all of them say the group's).
function voiceLabel(voice) {
  return `${titleCase(voice.language)}, ${optionLabel(voice)}`;
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
  const chosen = $("voice").value;
  return voices.find((voice) => voiceName(voice) === chosen);
}

// The small status beside the picker: whether the chosen voice is in memory, or is being loaded
// for a request of this page's.
function showVoiceState() {
  const voice = selectedVoice();
  const box = $("voice-state");
  if (!voice) {
    box.textContent = "";
    delete box.dataset.state;
    return;
  }
  const waiting = voiceLoading !== null && voiceLoading.name === voiceName(voice);
  const state = waiting ? "loading" : voiceState(voice);
  box.dataset.state = state;
  box.textContent = waiting ? "loading voice…" : (STATE_WORDS[state] || state);
}

function voiceChanged() {
  showVoiceState();
  const voice = selectedVoice();
  if (!voice) return;
  $("text").lang = LANGUAGE_TAGS[voice.language] || "";
  // The closed picker shows the option's words only ("male"): the note names the language too.
  // A voice not loaded yet has no engine (and, where its settings are unreadable, no sample rate).
  const facts = [voice.sample_rate ? `${voice.sample_rate} Hz` : "", voice.engine || ""].filter(Boolean).join(", ");
  const notes = [facts, voice.pinned ? "always kept loaded" : "",
                 voice.demo ? "a small demo voice: it speaks, but not well" : ""].filter(Boolean);
  $("voice-note").textContent = `${voiceLabel(voice)}${notes.length ? `: ${notes.join("; ")}` : ""}`;
}

// One <optgroup> per language, in order; each option's value is the voice's name, so the choice
// survives the list being asked for again.
function fillPicker() {
  const key = voices.map((voice) => `${voiceName(voice)}\t${optionLabel(voice)}`).join("\n");
  if (key === pickerKey) return; // the same voices: the picker stays as it is (it may be open)
  pickerKey = key;
  const select = $("voice");
  const chosen = select.value;
  const groups = new Map();
  for (const voice of voices) {
    if (!groups.has(voice.language)) {
      const group = document.createElement("optgroup");
      group.label = titleCase(voice.language);
      groups.set(voice.language, group);
    }
    const option = new Option(optionLabel(voice), voiceName(voice));
    option.setAttribute("aria-label", voiceLabel(voice));
    groups.get(voice.language).append(option);
  }
  select.replaceChildren(...groups.values());
  if (voices.some((voice) => voiceName(voice) === chosen)) select.value = chosen;
}

function megabytes(bytes) {
  return Math.round(bytes / 1e6).toLocaleString("en");
}

function showMemory(memory) {
  const line = $("memory");
  const budget = memory ? memory.budget_bytes : null;
  line.hidden = !budget;
  line.textContent = budget
    ? `Voices in memory: ${megabytes(memory.resident_bytes || 0)} MB of ${megabytes(budget)} MB`
    : "";
}

async function loadVoices() {
  clearTimeout(refreshTimer);
  refreshTimer = null;
  const asked = ++voicesAsked;
  let data;
  try {
    const response = await fetch("/api/voices", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    data = await response.json();
  } catch (error) {
    // only the first time: later the list is asked for again only to update the voices' states
    if (serverReady === null && asked === voicesAsked) {
      showError("Cannot reach the server to list its voices. Is lavanya serve still running?");
    }
    return;
  }
  if (asked !== voicesAsked) return; // a later request is under way
  maxChars = data.limits.max_chars;
  // Speed is the inverse of the server's alpha (a duration scale); keep to what both allow.
  const speed = $("speed");
  speed.min = Math.max(0.5, 1 / data.limits.alpha.max).toFixed(2);
  speed.max = Math.min(2, 1 / data.limits.alpha.min).toFixed(2);
  voices = [...data.voices].sort(byLanguage);
  fillPicker();
  voiceChanged();
  updateCount();
  showMemory(data.memory);
  const wasReady = serverReady;
  serverReady = Boolean(data.ready);
  if (!data.ready) {
    if (!inFlight) showStatus("The voices are still loading…");
    refreshTimer = setTimeout(loadVoices, REFRESH_MS);
    return;
  }
  if (wasReady !== true && !inFlight) showStatus(voices.length ? "Ready." : "This server has no voices.");
  // a voice loading for someone else: look again soon (after a request of ours, it asks anyway)
  if (!inFlight && voices.some((voice) => voiceState(voice) === "loading")) {
    refreshTimer = setTimeout(loadVoices, REFRESH_MS);
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
      const when = wait ? ` in ${wait} s` : " shortly";
      if (body.error === "voice_memory") {
        return `The server has no memory free to load this voice just now; try again${when}.${detail}`;
      }
      return `The server is busy with other requests; try again${when}.${detail}`;
    }
    case 413: return `The text is too long for this server${detail}.`;
    case 422: return `This cannot be spoken${detail}.`;
    case 404: return `That voice is not on this server${detail}.`;
    case 504: return `Speaking took longer than the server allows${detail}.`;
    case 500:
      if (body.error === "voice_unavailable") return `This voice cannot be loaded on this server${detail}.`;
      return `The server could not speak this (HTTP 500)${detail}.`;
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

function showResult(blob, seconds, elapsed, firstByte, voice) {
  audioUrl = URL.createObjectURL(blob);
  const player = $("player");
  player.src = audioUrl;
  const link = $("download");
  link.href = audioUrl;
  link.download = `lavanya-${voice.language}-${voice.gender}${voice.variant ? `-${voice.variant}` : ""}.wav`;
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
  // A voice not in memory loads on this request: its first audio comes a few seconds later.
  if (voiceState(voice) !== "resident") {
    voiceLoading = { controller, name: voiceName(voice) };
    showStatus("Loading the voice (a few seconds), then speaking…");
  } else {
    voiceLoading = null;
    showStatus("Speaking…");
  }
  showVoiceState();
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
      voiceLoaded(controller, null);
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
        if (firstByte === null) {
          firstByte = (performance.now() - started) / 1000;
          voiceLoaded(controller, voice);
        }
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
    showResult(finishedWav(parts, size), seconds, elapsed, firstByte, voice);
    document.body.dataset.state = "done";
    showStatus(`Done: ${seconds.toFixed(2)} s of audio.` + unpronounced(response.headers));
    if (cut) showError(`The server stopped part-way (time limit or failure); this is the ${seconds.toFixed(2)} s that arrived.`);
  } catch (error) {
    if (error.name === "AbortError") return;
    showStatus("");
    showError(`Cannot reach the server (${error.message}).`);
  } finally {
    voiceLoaded(controller, null);
    if (inFlight === controller) {
      inFlight = null;
      $("speak").disabled = false;
      loadVoices(); // the voices' states (and memory) have likely changed
    }
  }
}

// The request of ``controller`` no longer waits for its voice: audio came (``voice`` is in
// memory now), or the request ended without it (``voice`` null: the next voice list tells).
function voiceLoaded(controller, voice) {
  if (voiceLoading === null || voiceLoading.controller !== controller) return;
  voiceLoading = null;
  if (voice) {
    const listed = voices.find((each) => voiceName(each) === voiceName(voice));
    if (listed) listed.state = "resident";
    if (inFlight === controller) showStatus("Speaking…");
  }
  showVoiceState();
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

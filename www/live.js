// Live transcription from the microphone, shared by the page (app.js) and <hubside-transcribe
// live> (widgets.js): an AudioWorklet (live-worklet.js) captures the microphone at the audio
// context's rate; blocks go to the worker's live session (client.live), which resamples them to
// 16 kHz, skips silence and answers {committed, tentative}: committed text never changes,
// tentative text is the latest guess, shown greyed.

/** A readable message for getUserMedia's and AudioContext's failures. */
export function microphoneError(e) {
  if (e && (e.name === 'NotAllowedError' || e.name === 'SecurityError')) {
    return 'Microphone access was denied. Allow the microphone for this page (the icon in the address bar) and try again.';
  }
  if (e && (e.name === 'NotFoundError' || e.name === 'OverconstrainedError')) return 'No microphone was found. Connect one and try again.';
  if (e && e.name === 'NotReadableError') return 'The microphone is in use by another application or could not be opened.';
  if (!navigator.mediaDevices?.getUserMedia) return 'This browser gives no microphone access here (a secure https:// or localhost page is needed).';
  return `Cannot use the microphone: ${e && e.message ? e.message : e}`;
}

/** Show {committed, tentative} in `element`: committed text plain, tentative text greyed. */
export function renderLive(element, { committed = '', tentative = '' }) {
  const done = document.createElement('span');
  done.className = 'committed';
  done.textContent = committed;
  const guess = document.createElement('span');
  guess.className = 'tentative';
  guess.textContent = tentative ? `${committed ? ' ' : ''}${tentative}` : '';
  element.replaceChildren(done, guess);
}

/** Start the microphone and a live session of `spec`'s (loaded) model in `client`'s worker.
 * `onUpdate({committed, tentative, received})` runs after each decode. Resolves to
 * `{stop(): Promise<{text, chunks, language}>}` once the microphone runs; rejects with a readable
 * message when it cannot. */
export async function startLive(client, spec, options, onUpdate) {
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: false, autoGainControl: true },
    });
  } catch (e) {
    throw new Error(microphoneError(e));
  }
  const context = new AudioContext();
  try {
    await context.audioWorklet.addModule(new URL('./live-worklet.js', import.meta.url));
  } catch (e) {
    stream.getTracks().forEach((t) => t.stop());
    await context.close();
    throw new Error(`Cannot start audio capture: ${e.message}`);
  }
  const session = client.live(spec, options, onUpdate);
  const source = context.createMediaStreamSource(stream);
  const capture = new AudioWorkletNode(context, 'hubside-live-capture');
  capture.port.onmessage = ({ data }) => session.push(data, context.sampleRate);
  source.connect(capture);
  let stopped;
  return {
    sampleRate: context.sampleRate,
    stop() {
      stopped ??= (async () => {
        capture.port.postMessage('flush');
        // The flushed block arrives on the port before the worklet is disconnected.
        await new Promise((resolve) => setTimeout(resolve, 50));
        source.disconnect();
        capture.disconnect();
        stream.getTracks().forEach((t) => t.stop());
        await context.close();
        return session.finish();
      })();
      return stopped;
    },
  };
}

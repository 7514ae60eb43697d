// Audio-thread half of the page's recorder: hands each block of microphone samples,
// averaged to mono, to the page, which resamples them to 16 kHz and writes a WAV.
class RecorderProcessor extends AudioWorkletProcessor {
  process(inputs) {
    const channels = inputs[0];
    if (channels.length > 0) {
      const mono = new Float32Array(channels[0].length);
      for (const channel of channels) {
        for (let i = 0; i < mono.length; i++) mono[i] += channel[i] / channels.length;
      }
      this.port.postMessage(mono, [mono.buffer]);
    }
    return true; // keep running until the page disconnects the node
  }
}

registerProcessor("recorder", RecorderProcessor);

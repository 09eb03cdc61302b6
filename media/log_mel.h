// media/log_mel.h: 80-bin log-mel features at a 10 ms hop, the speech encoder's input (paper-spec.md §2.1).
//
// Whisper (default), as openai/whisper's log_mel_spectrogram (ref: openai/whisper@8d6e0e5e whisper/audio.py
// log_mel_spectrogram, N_FFT = 400, HOP_LENGTH = 160): periodic Hann window of n_fft = 400, hop 160, STFT
// centred with reflect padding, power spectrum, the last frame dropped (n_samples / 160 frames), Slaney mel
// filterbank (librosa.filters.mel's defaults: Slaney scale and area normalisation, 0 to 8 kHz), log10 with a
// 1e-10 floor, clamp to 8 below the utterance's maximum, then (x + 4) / 4.
// Kaldi fbank (ref: pytorch/audio@a9d80eae src/torchaudio/compliance/kaldi.py fbank, num_mel_bins 80,
// dither 0): samples scaled to the int16 range (x 2^15), 25 ms frames every 10 ms with snip_edges (no frame
// shorter than 25 ms), DC removal, pre-emphasis 0.97, Povey window (Hann^0.85), 512-point FFT, power, mel
// 1127 ln(1 + f/700) from 20 Hz to Nyquist, natural log with a float-epsilon floor; no energy column.
//
// Choices: the FFT and power spectrum are computed in float64 (the mel product and the log in float32), so the
// result is within ~1e-6 of an exact computation; openai/whisper's float32 torch.stft is itself ~1e-4 off in
// the bins near the -80 dB clamp. Input of n_fft/2 samples or fewer cannot be reflect-padded (torch.stft
// raises); it is zero-padded instead. Input shorter than one hop (Whisper) or one frame (Kaldi) gives
// [0, n_mels]. Long input is processed in chunks of frames (memory stays small; one hour takes a few seconds).
// Per-bin global normalisation is NOT applied here: the encoder does it (encoders/conformer.h).
// Thread-safety: reentrant. Legend: F frames, M mel bins.
#pragma once

#include "media/audio_decode.h"

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

namespace llama_mm::media {

struct LogMelConfig {
  enum class Kind { Whisper, KaldiFbank };
  Kind kind = Kind::Whisper;
  // n_fft and hop_length are the window and the hop in samples (Kaldi: frame length and shift; its FFT size
  // is n_fft rounded up to a power of two).
  int sample_rate = kSpeechSampleRate, n_fft = 400, hop_length = 160, n_mels = 80;

  // {"kind": "whisper" | "kaldi_fbank", "sample_rate", "n_fft", "hop_length", "n_mels"}
  nlohmann::json to_json() const;
  // Absent keys take the defaults above. Unknown keys and invalid values are ErrorKind::Config naming `origin`
  // and the key (as "frontend.<key>", the object's place in a speech adapter's config).
  static LogMelConfig from_json(const nlohmann::json& j, const std::string& origin);
  // Whisper: n_samples / hop_length (centred frames, the last one dropped). Kaldi: 1 + (n - n_fft) / hop_length,
  // 0 when n < n_fft (snip_edges).
  int64_t n_frames(int64_t n_samples) const;
};

// [n_mels, n_fft/2 + 1] float32: Slaney-scale triangles with Slaney area normalisation, as librosa.filters.mel
// (htk=False, norm="slaney"). fmax < 0 means sample_rate / 2.
torch::Tensor slaney_mel_filterbank(int sample_rate, int n_fft, int n_mels, double fmin = 0.0, double fmax = -1.0);

// samples: n mono floats at cfg.sample_rate -> [F = cfg.n_frames(n), M] float32.
torch::Tensor log_mel_spectrogram(const float* samples, int64_t n, const LogMelConfig& cfg = {});
// The same; audio.sample_rate must equal cfg.sample_rate (InputDecode error otherwise).
torch::Tensor log_mel_spectrogram(const Audio& audio, const LogMelConfig& cfg = {});

}  // namespace llama_mm::media

// Cards held to the phone's camera, read by the browser's BarcodeDetector where it has one
// (the camera button stays hidden elsewhere: desktop Linux chromium, Firefox).

import { $ } from "./common-dom.js";

const FRAME_MS = 200; // one look at the camera this often
const SAME_CARD_MS = 3000; // the same card seen again within this is the same scan

export class Camera {
  /** onCode(code) for each card read; onError(err) when the camera cannot be opened. */
  constructor({ onCode, onError }) {
    this.onCode = onCode;
    this.onError = onError;
    this.detector = null;
    this.stream = null;
    this.lastCode = "";
    this.lastCodeAt = 0;
    $("camera").addEventListener("click", () => this.open());
    $("camera-close").addEventListener("click", () => this.close());
    $("camera-dialog").addEventListener("close", () => this.stream && this.close());
  }

  get isOpen() {
    return $("camera-dialog").open;
  }

  /** Show the camera button where the browser can read QR codes. */
  async init() {
    if (!("BarcodeDetector" in window) || !navigator.mediaDevices?.getUserMedia) return;
    try {
      const formats = await window.BarcodeDetector.getSupportedFormats();
      if (!formats.includes("qr_code")) return;
      this.detector = new window.BarcodeDetector({ formats });
      $("camera").hidden = false;
    } catch {
      // no detector on this device: the button stays hidden
    }
  }

  async open() {
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: "environment" },
        audio: false,
      });
    } catch (err) {
      this.onError(err);
      return;
    }
    const video = $("camera-video");
    video.srcObject = this.stream;
    $("camera-result").textContent = "";
    $("camera-dialog").showModal();
    await video.play();
    this.detectLoop();
  }

  async detectLoop() {
    if (!this.stream) return;
    try {
      for (const found of await this.detector.detect($("camera-video"))) {
        const code = found.rawValue.trim();
        // the same card held in front of the camera is one scan, not one per frame
        if (code && (code !== this.lastCode || Date.now() - this.lastCodeAt > SAME_CARD_MS)) {
          this.lastCode = code;
          this.lastCodeAt = Date.now();
          navigator.vibrate?.(60);
          this.onCode(code);
        }
      }
    } catch {
      // a frame that could not be read; try the next one
    }
    setTimeout(() => this.detectLoop(), FRAME_MS);
  }

  close() {
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = null;
    $("camera-dialog").close();
  }
}

// Watches what the desk asks of the browser on ringing; the real Notification and
// Web Audio still run (tests/browser/test_agent_desk.py).
window.__alerts = [];
window.__tones = 0;
const RealNotification = window.Notification;
class WatchedNotification extends RealNotification {
  constructor(title, options) {
    super(title, options);
    window.__alerts.push({ title, body: options.body, tag: options.tag });
  }
}
Object.defineProperty(WatchedNotification, "permission", { get: () => RealNotification.permission });
WatchedNotification.requestPermission = (...args) => RealNotification.requestPermission(...args);
window.Notification = WatchedNotification;
const realOscillator = AudioContext.prototype.createOscillator;
AudioContext.prototype.createOscillator = function () {
  window.__tones += 1;
  return realOscillator.call(this);
};

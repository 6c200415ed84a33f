// Labels in Vietnamese (the default: the operators' language) and English, and the
// number and time formats of each. Times are shown in Quang Ninh's time (UTC+7).

const LABELS = {
  vi: {
    title: "Trung tâm Điều hành Thông minh Quảng Ninh",
    skipToAlerts: "Chuyển đến cảnh báo",
    switchTo: "English",
    namespace: "Không gian dữ liệu",
    signOut: "Đăng xuất",
    loginTitle: "Đăng nhập bằng khóa API",
    loginHelp: "Khóa API của ca trực (phạm vi view). Khóa chỉ được giữ trong thẻ này của trình duyệt.",
    apiKey: "Khóa API",
    connect: "Kết nối",
    keyRefused: "Khóa không hợp lệ hoặc không có quyền xem ({detail}).",
    apiUnreachable: "Không kết nối được tới máy chủ API.",
    connIdle: "Chưa kết nối",
    connConnecting: "Đang kết nối…",
    connLive: "Trực tuyến",
    connRetry: "Mất kết nối, thử lại sau {s} giây",
    overview: "Tổng quan thành phố",
    reporting: "{n} / {total} đang gửi dữ liệu",
    lastEvent: "Sự kiện mới nhất: {time}",
    noData: "Chưa có dữ liệu",
    alertsOpen: "Cảnh báo mở",
    map: "Bản đồ Quảng Ninh",
    layers: "Lớp hiển thị",
    mapSummary: "{zones} vùng, {communes} xã/phường/đặc khu, {markers} đối tượng trên bản đồ.",
    mapCapped: "Hiển thị {markers} trên {total} đối tượng.",
    legendOk: "Bình thường",
    legendWarning: "Cảnh báo",
    legendCritical: "Nghiêm trọng",
    legendAck: "Đã xác nhận",
    legendNone: "Chưa có dữ liệu",
    findEntity: "Tìm đối tượng",
    open: "Mở",
    notFound: "Không tìm thấy “{q}”.",
    alerts: "Cảnh báo trực tiếp",
    noAlerts: "Không có cảnh báo đang mở.",
    alertCount: "{n} đang mở",
    newAlert: "Cảnh báo mới: {title} tại {entity}",
    acknowledge: "Xác nhận",
    resolve: "Đã xử lý",
    details: "Chi tiết",
    openedAt: "Mở lúc {time}",
    ackBy: "Đã xác nhận bởi {who}",
    actionFailed: "Không thực hiện được: {detail}",
    close: "Đóng",
    metric: "Chỉ số",
    lastSeen: "Cập nhật: {time}",
    neverSeen: "Chưa gửi dữ liệu",
    chartTitle: "{metric}, 60 phút gần nhất",
    chartEmpty: "Không có dữ liệu trong khoảng này.",
    chartSummary: "{n} điểm, thấp nhất {min}, cao nhất {max}, mới nhất {last}",
    chartTable: "Bảng số liệu",
    time: "Thời gian",
    value: "Giá trị",
    loading: "Đang tải…",
    unknownEntity: "Không có dữ liệu cho đối tượng này.",
    incidents: "Sự cố",
    noIncidents: "Không có sự cố đang mở.",
    incidentCount: "{n} đang mở",
    newIncident: "Sự cố mới: {title} tại {area}",
    alertsOne: "{n} cảnh báo",
    alertsMany: "{n} cảnh báo",
    sopNamed: "Quy trình: {title}",
    sopUnknown: "(không tìm thấy quy trình)",
    checklist: "Các bước xử lý",
    stepsDone: "đã xong {done}/{total} bước",
    checkedBy: "Đã làm: {who}, lúc {time}",
    memberAlerts: "Cảnh báo liên quan",
    alertsNotStored: "{n} cảnh báo chưa được lưu",
    timelineTitle: "Diễn biến",
    note: "Ghi chú",
    addNote: "Thêm ghi chú",
    byWho: "bởi {who}",
    assignedTo: "Giao cho {who}",
    resolvedBy: "Đã xử lý bởi {who} lúc {time}",
    escalated: "Mức độ tăng",
    mergedInto: "Gộp vào sự cố {id}",
    mergedFrom: "Nhận từ sự cố {id}",
    unknownIncident: "Không có dữ liệu cho sự cố này.",
    timeline: {
      open: "Mở sự cố", update: "Cập nhật", close: "Khu vực đã ổn định", retract: "Thu hồi",
      acknowledge: "Xác nhận", assign: "Phân công", annotate: "Ghi chú", step: "Hoàn thành bước",
      resolve: "Đã xử lý", merge: "Gộp sự cố",
    },
    domains: { traffic: "Giao thông", hospital: "Y tế", school: "Giáo dục", security: "An ninh" },
    severity: { critical: "Nghiêm trọng", warning: "Cảnh báo", info: "Thông tin" },
    state: {
      open: "Mới", acknowledged: "Đã xác nhận", resolved: "Đã xử lý", closed: "Đã ổn định",
      retracted: "Đã thu hồi", merged: "Đã gộp",
    },
    provisional: "Dự báo",
    kinds: {
      intersection: "Nút giao", road_segment: "Đoạn đường", camera: "Camera",
      school: "Trường học", hospital: "Bệnh viện",
    },
    metrics: {
      vehicles: "Lưu lượng xe (xe/phút)",
      avg_speed_kmh: "Tốc độ trung bình (km/h)",
      occupancy_pct: "Mật độ chiếm dụng (%)",
      incidents: "Sự cố",
      lanes_blocked: "Làn bị chặn",
      bed_occupancy_pct: "Công suất giường (%)",
      icu_occupancy_pct: "Công suất ICU (%)",
      er_waiting: "Chờ cấp cứu",
      ambulances_available: "Xe cứu thương sẵn sàng",
      admissions: "Nhập viện",
      admissions_urgent: "Nhập viện khẩn cấp",
      attendance_pct: "Tỷ lệ chuyên cần (%)",
      present: "Học sinh có mặt",
      safety_reports: "Báo cáo an toàn",
      detections: "Lượt phát hiện",
      detected_count: "Số đối tượng phát hiện",
      confidence: "Độ tin cậy",
      intrusion_confidence: "Độ tin cậy xâm nhập",
      alarms: "Báo động",
    },
  },
  en: {
    title: "Quang Ninh Intelligent Operations Centre",
    skipToAlerts: "Skip to alerts",
    switchTo: "Tiếng Việt",
    namespace: "Namespace",
    signOut: "Sign out",
    loginTitle: "Sign in with an API key",
    loginHelp: "The shift's API key (view scope). It is kept in this browser tab only.",
    apiKey: "API key",
    connect: "Connect",
    keyRefused: "The key is not valid or may not view ({detail}).",
    apiUnreachable: "The API cannot be reached.",
    connIdle: "Not connected",
    connConnecting: "Connecting…",
    connLive: "Live",
    connRetry: "Connection lost, retrying in {s} s",
    overview: "City overview",
    reporting: "{n} of {total} reporting",
    lastEvent: "Newest event: {time}",
    noData: "No data yet",
    alertsOpen: "Open alerts",
    map: "Map of Quang Ninh",
    layers: "Layers",
    mapSummary: "{zones} zones, {communes} commune-level units, {markers} entities on the map.",
    mapCapped: "Showing {markers} of {total} entities.",
    legendOk: "Normal",
    legendWarning: "Warning",
    legendCritical: "Critical",
    legendAck: "Acknowledged",
    legendNone: "No data yet",
    findEntity: "Find an entity",
    open: "Open",
    notFound: "No entity matches “{q}”.",
    alerts: "Live alerts",
    noAlerts: "No open alerts.",
    alertCount: "{n} open",
    newAlert: "New alert: {title} at {entity}",
    acknowledge: "Acknowledge",
    resolve: "Resolve",
    details: "Details",
    openedAt: "Opened {time}",
    ackBy: "Acknowledged by {who}",
    actionFailed: "Could not do it: {detail}",
    close: "Close",
    metric: "Metric",
    lastSeen: "Updated {time}",
    neverSeen: "Has not reported",
    chartTitle: "{metric}, last 60 minutes",
    chartEmpty: "No data in this range.",
    chartSummary: "{n} points, lowest {min}, highest {max}, latest {last}",
    chartTable: "Data table",
    time: "Time",
    value: "Value",
    loading: "Loading…",
    unknownEntity: "No data for this entity.",
    incidents: "Incidents",
    noIncidents: "No open incidents.",
    incidentCount: "{n} open",
    newIncident: "New incident: {title} in {area}",
    alertsOne: "{n} alert",
    alertsMany: "{n} alerts",
    sopNamed: "SOP: {title}",
    sopUnknown: "(procedure not found)",
    checklist: "Checklist",
    stepsDone: "{done} of {total} steps done",
    checkedBy: "Done by {who} at {time}",
    memberAlerts: "Member alerts",
    alertsNotStored: "{n} alerts not stored yet",
    timelineTitle: "Timeline",
    note: "Note",
    addNote: "Add note",
    byWho: "by {who}",
    assignedTo: "Assigned to {who}",
    resolvedBy: "Resolved by {who} at {time}",
    escalated: "Escalated",
    mergedInto: "Merged into incident {id}",
    mergedFrom: "Took in incident {id}",
    unknownIncident: "No data for this incident.",
    timeline: {
      open: "Opened", update: "Updated", close: "Area quiet again", retract: "Retracted",
      acknowledge: "Acknowledged", assign: "Assigned", annotate: "Note", step: "Step done",
      resolve: "Resolved", merge: "Merged",
    },
    domains: { traffic: "Traffic", hospital: "Hospitals", school: "Schools", security: "Security" },
    severity: { critical: "Critical", warning: "Warning", info: "Info" },
    state: {
      open: "Open", acknowledged: "Acknowledged", resolved: "Resolved", closed: "Quiet",
      retracted: "Retracted", merged: "Merged",
    },
    provisional: "Provisional",
    kinds: {
      intersection: "Intersection", road_segment: "Road segment", camera: "Camera",
      school: "School", hospital: "Hospital",
    },
    metrics: {
      vehicles: "Vehicles per minute",
      avg_speed_kmh: "Average speed (km/h)",
      occupancy_pct: "Occupancy (%)",
      incidents: "Incidents",
      lanes_blocked: "Lanes blocked",
      bed_occupancy_pct: "Bed occupancy (%)",
      icu_occupancy_pct: "ICU occupancy (%)",
      er_waiting: "Waiting in ER",
      ambulances_available: "Ambulances available",
      admissions: "Admissions",
      admissions_urgent: "Urgent admissions",
      attendance_pct: "Attendance (%)",
      present: "Pupils present",
      safety_reports: "Safety reports",
      detections: "Detections",
      detected_count: "Objects detected",
      confidence: "Confidence",
      intrusion_confidence: "Intrusion confidence",
      alarms: "Alarms",
    },
  },
};

const LOCALES = { vi: "vi-VN", en: "en-GB" };
const STORE = "ioc.lang";
let lang = localStorage.getItem(STORE) === "en" ? "en" : "vi";

export function currentLang() {
  return lang;
}

export function setLang(next) {
  lang = next === "en" ? "en" : "vi";
  localStorage.setItem(STORE, lang);
  document.documentElement.lang = lang;
}

/** The label `key` (dotted for groups: "domains.traffic"), with `{name}` filled from `params`. */
export function t(key, params = {}) {
  let value = key.split(".").reduce((node, part) => (node ? node[part] : undefined), LABELS[lang]);
  if (typeof value !== "string") value = key.split(".").pop();
  return value.replace(/\{(\w+)\}/g, (_, name) => String(params[name] ?? ""));
}

/** Fill every `data-i18n` element under `root` with its label. */
export function applyLabels(root = document) {
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  document.title = lang === "vi" ? "IOC Quảng Ninh" : "Quang Ninh IOC";
}

export function formatNumber(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return new Intl.NumberFormat(LOCALES[lang], {
    maximumFractionDigits: digits,
    minimumFractionDigits: 0,
  }).format(value);
}

export function formatTime(iso, { seconds = false, date = false } = {}) {
  if (!iso) return "–";
  const options = { timeZone: "Asia/Ho_Chi_Minh", hour: "2-digit", minute: "2-digit", hour12: false };
  if (seconds) options.second = "2-digit";
  if (date) Object.assign(options, { day: "2-digit", month: "2-digit", year: "numeric" });
  return new Intl.DateTimeFormat(LOCALES[lang], options).format(new Date(iso));
}

/** A name in the current language: `name_vi` in Vietnamese when there is one. */
export function nameOf(thing) {
  if (!thing) return "";
  return (lang === "vi" && thing.name_vi) || thing.name || thing.id || thing.entity_id || "";
}

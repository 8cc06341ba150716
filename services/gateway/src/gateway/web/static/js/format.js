// Numbers, percentages, money, months and times in the interface language (zh-CN first).

import { locale, t } from "./i18n.js";

const DASH = "—";

export function number(value) {
  if (value === null || value === undefined) return DASH;
  return new Intl.NumberFormat(locale()).format(value);
}

/** A rate between 0 and 1 as a percentage with at most one decimal: 0.8333 → 83.3%. */
export function percent(rate) {
  if (rate === null || rate === undefined) return DASH;
  return new Intl.NumberFormat(locale(), {
    style: "percent",
    maximumFractionDigits: 1,
  }).format(rate);
}

/** Yuan from the API's "1234.50" string: ¥1,234.50. */
export function yuan(text) {
  if (text === null || text === undefined) return DASH;
  return new Intl.NumberFormat(locale(), {
    style: "currency",
    currency: "CNY",
    currencyDisplay: "narrowSymbol",
    minimumFractionDigits: 2,
    maximumFractionDigits: 2,
  }).format(Number(text));
}

/** "2026-11" → 2026年11月 (November 2026); `short` gives 11月 (Nov). */
export function month(yyyymm, short = false) {
  const [year, monthNo] = yyyymm.split("-").map(Number);
  const options = short ? { month: "short" } : { year: "numeric", month: "long" };
  return new Intl.DateTimeFormat(locale(), { ...options, timeZone: "UTC" }).format(
    new Date(Date.UTC(year, monthNo - 1, 15)),
  );
}

/** An ISO timestamp in China Standard Time, to the minute. */
export function dateTime(iso) {
  if (!iso) return DASH;
  return new Intl.DateTimeFormat(locale(), {
    timeZone: "Asia/Shanghai",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    hour12: false,
  }).format(new Date(iso));
}

/** A distance in metres: 850 米, 1.1 公里. */
export function distance(metres) {
  if (metres === null || metres === undefined) return DASH;
  if (metres < 1000) return t("unit.metres", { value: number(Math.round(metres)) });
  const km = new Intl.NumberFormat(locale(), { maximumFractionDigits: 1 }).format(metres / 1000);
  return t("unit.kilometres", { value: km });
}

// Cell formatters of the runs table: numbers stay numbers (so columns sort and filter as
// numbers) and are shown with their unit and a readable prefix. Unknown shows as a dash,
// never as 0.
var dagfuncs = (window.dashAgGridFunctions = window.dashAgGridFunctions || {});

function carbonPrefixed(value, units, zeroUnit) {
  if (value === null || value === undefined || Number.isNaN(value)) {
    return "—";
  }
  if (value === 0) {
    return "0 " + zeroUnit;
  }
  for (var i = 0; i < units.length; i++) {
    if (Math.abs(value) >= units[i][0] * 0.9995) {
      return (value / units[i][0]).toPrecision(3).replace(/\.?0+$/, "") + " " + units[i][1];
    }
  }
  var last = units[units.length - 1];
  return (value / last[0]).toPrecision(3) + " " + last[1];
}

dagfuncs.energyWh = function (joules) {
  return carbonPrefixed(joules, [
    [3.6e9, "MWh"], [3.6e6, "kWh"], [3600, "Wh"], [3.6, "mWh"], [3.6e-3, "µWh"],
  ], "Wh");
};

dagfuncs.massG = function (grams) {
  return carbonPrefixed(grams, [[1e6, "t"], [1e3, "kg"], [1, "g"], [1e-3, "mg"], [1e-6, "µg"]], "g");
};

dagfuncs.joulesPerFlop = function (value) {
  return carbonPrefixed(value, [[1e-6, "µJ"], [1e-9, "nJ"], [1e-12, "pJ"], [1e-15, "fJ"]], "J");
};

dagfuncs.joules = function (value) {
  return carbonPrefixed(value, [
    [1e6, "MJ"], [1e3, "kJ"], [1, "J"], [1e-3, "mJ"], [1e-6, "µJ"], [1e-9, "nJ"],
  ], "J");
};

dagfuncs.share = function (fraction) {
  if (fraction === null || fraction === undefined) {
    return "—";
  }
  return (fraction * 100).toFixed(1) + " %";
};

dagfuncs.duration = function (seconds) {
  if (seconds === null || seconds === undefined) {
    return "—";
  }
  if (seconds < 3600) {
    return seconds.toFixed(1) + " s";
  }
  var h = Math.floor(seconds / 3600);
  var m = Math.floor((seconds % 3600) / 60);
  var s = Math.floor(seconds % 60);
  return h + ":" + String(m).padStart(2, "0") + ":" + String(s).padStart(2, "0");
};

-- Argo CD health check for rekognition.aws-operators.dev/RekognitionCollection.
-- Healthy: Ready=True (a failing refresh of a usable collection stays Healthy, with its reason).
-- Degraded: the operator waits for a person (the spec, IAM, a quota or the platform policy): every
-- object kstatus calls Failed (Stalled=True), and failures retried only on the long backoff.
-- Progressing: anything the operator is working on or retrying by itself.
local hs = { status = "Progressing", message = "waiting for the operator" }
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
local ready = nil
local synced = nil
local stalled = nil
for _, condition in ipairs(obj.status.conditions) do
  if condition.type == "Ready" then
    ready = condition
  elseif condition.type == "Synced" then
    synced = condition
  elseif condition.type == "Stalled" and condition.status == "True" then
    stalled = condition
  end
end
if ready == nil then
  return hs
end
-- Stalled (what kstatus reads as Failed) is Degraded here too, whatever the reason.
if stalled ~= nil then
  hs.status = "Degraded"
  hs.message = stalled.reason .. ": " .. (stalled.message or "")
  return hs
end
local waits_for_a_person = {
  InvalidParameter = true,
  AlreadyExists = true,
  AccessDenied = true,
  QuotaExceeded = true,
  CredentialsUnavailable = true,
  PolicyDenied = true,
  RegionConflict = true,
  AwsError = true,
  NotFound = true,
  AwaitingHandover = true,
  HandedOver = true,
}
local reason = ready.reason
local message = ready.message or ""
if synced ~= nil and synced.status == "False" then
  reason = synced.reason
  message = synced.message or ""
end
local current = obj.metadata.generation == nil or obj.status.observedGeneration == obj.metadata.generation
if ready.status == "True" then
  if current then
    hs.status = "Healthy"
  elseif waits_for_a_person[reason] then
    hs.status = "Degraded"
  end
  if reason ~= ready.reason then
    hs.message = reason .. ": " .. message .. " (the collection stays usable)"
  else
    hs.message = message
  end
  return hs
end
if waits_for_a_person[reason] then
  hs.status = "Degraded"
end
hs.message = reason .. ": " .. message
return hs

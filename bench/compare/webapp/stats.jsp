<%--
  This node's figures for bench/compare.pl, read from its own MBeans (no
  session is created):
    /stats                 Members, ActiveSessions, SessionCounter, ...
    /stats?id=ID&key=K     the attribute K of session ID as this node holds it
                           (DeltaManager.getSessionAttribute: the replication
                           lag probe; the request carries no session cookie,
                           so JvmRouteBinderValve leaves the session alone)
--%><%@ page session="false" contentType="text/plain" import="javax.management.*,java.lang.management.ManagementFactory" %><%
    MBeanServer mbs = ManagementFactory.getPlatformMBeanServer();
    ObjectName mgr = new ObjectName("Catalina:type=Manager,host=localhost,context=/");
    String id = request.getParameter("id");
    if (id != null) {
        Object v = mbs.invoke(mgr, "getSessionAttribute",
                              new Object[] { id, request.getParameter("key") },
                              new String[] { "java.lang.String", "java.lang.String" });
        out.print("Value: " + (v == null ? "" : v) + "\n");
        return;
    }
    int members = -1;
    for (ObjectName n : mbs.queryNames(new ObjectName("ClusterChannel:type=Channel,component=Channel,*"), null)) {
        Object m = mbs.getAttribute(n, "Members");
        if (m instanceof Object[]) {
            members = ((Object[]) m).length;
        }
    }
    out.print("Members: " + members + "\n");
    for (String a : new String[] { "activeSessions", "sessionCounter", "maxActive", "stateName",
                                   "counterReceive_EVT_ALL_SESSION_DATA",
                                   "counterSend_EVT_SESSION_DELTA", "counterReceive_EVT_SESSION_DELTA" }) {
        Object v;
        try { v = mbs.getAttribute(mgr, a); } catch (Exception e) { v = "?"; }
        out.print(Character.toUpperCase(a.charAt(0)) + a.substring(1) + ": " + v + "\n");
    }
%>
